"""The errors-sink envelope: what a failed record becomes before it is written to ``spec.errors``.

Compatible with the original's envelope (``error.message``, ``error.timestamp``,
``error.original_sink``, ``error.metadata``, ``original_message``) plus what tells where and why:

.. code-block:: json

    {"error": {"message": "invalid JSON: …", "timestamp": "2026-02-27T10:00:00.123456Z",
               "stage": "parse | transform | write",
               "transformation": {"index": 1, "type": "filter"} | null,
               "original_sink": "postgresql", "sink": "sink | errors | <route condition>",
               "position": {"partition": 0, "offset": 42} | null,
               "dataflow": {"namespace": "shop", "name": "orders"},
               "metadata": {"topic": "orders", "partition": 0, "offset": 42, "key": ""}},
     "original_message": {…} | {"original_data": "<raw text>"}}

``original_message`` is the source payload as read (re-parsed from the raw bytes) for parse and
transform failures — the raw text under ``original_data`` when it is not a JSON object — and the
record as it was about to be written for write failures. A payload no sink could encode (nested
deeper than orjson's 254 levels: parsing accepts 1,024) is carried as its raw text under
``original_data`` instead, so the envelope itself can always be written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from dataflow_processor.records import Record


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """Read-only mappings in metadata (a Kafka record without headers has ``headers`` =
    ``EMPTY_METADATA``, a ``MappingProxyType``) as plain dicts: the envelope is a JSON document that
    every sink serializes, and orjson refuses a ``mappingproxy``."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def encodable(value: Any) -> bool:
    """Whether ``value`` can be written as JSON (not nested too deep, keys and values encodable)."""
    try:
        orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def raw_text(record: Record) -> str:
    """The record as text for a log line or ``original_data``: its raw bytes, else its value's repr
    (bounded: a value that cannot be encoded may not be printable in full either)."""
    if record.raw is not None:
        return record.raw.decode("utf-8", errors="replace")
    try:
        return repr(record.value)
    except RecursionError:
        return "<not printable: nested too deep>"


def original_message(record: Record, stage: str) -> dict[str, Any]:
    message = _original_message(record, stage)
    if not encodable(message):
        return {"original_data": raw_text(record)}
    return message


def _original_message(record: Record, stage: str) -> dict[str, Any]:
    if stage != "write" and record.raw is not None:
        try:
            parsed = orjson.loads(record.raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        return {"original_data": record.raw.decode("utf-8", errors="replace")}
    if record.value is not None:
        return record.value
    return {"original_data": ""}


def build_envelope(
    record: Record,
    *,
    message: str,
    stage: str,
    namespace: str,
    name: str,
    original_sink: str = "unknown",
    sink: str | None = None,
    transform_index: int | None = None,
    transform_type: str | None = None,
) -> Record:
    """Wrap a failed record into an errors-sink record that keeps the original's ack token (and index)."""
    now = _utc_now()
    metadata = {k: _plain(v) for k, v in record.metadata.items()}
    envelope = {
        "error": {
            "message": message,
            "timestamp": now,
            "stage": stage,
            "transformation": (
                {"index": transform_index, "type": transform_type} if transform_index is not None else None
            ),
            "original_sink": original_sink,
            "sink": sink,
            "position": record.position.as_dict() if record.position is not None else None,
            "dataflow": {"namespace": namespace, "name": name},
            "metadata": metadata,
        },
        "original_message": original_message(record, stage),
    }
    error_metadata = {
        **metadata,
        "error": message,
        "error_timestamp": now,
        "original_sink": original_sink,
        "is_error_message": True,
    }
    return Record(
        envelope,
        raw=None,
        metadata=error_metadata,
        position=record.position,
        token=record.token,
        ack_index=record.ack_index,
    )
