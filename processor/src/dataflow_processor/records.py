"""``Record`` and ``Position``: what flows through the pipeline.

A source hands the pipeline records carrying either a parsed ``value`` (a dict) or ``raw`` bytes
that the pipeline's parse stage decodes as JSON (a failure goes to the errors sink with the raw
text). ``raw`` is kept after parsing so an errors envelope can show the original payload.

``metadata`` is copy-on-write: it may be shared between a record and its fan-out children, so code
that changes it assigns a new dict (``rec.metadata = {**rec.metadata, k: v}``), never mutates it.

``token`` ties a record to its source position: the :class:`~dataflow_processor.watermark.AckRange`
of its source batch and partition, with the record's index in it in ``ack_index``. This module names
it only by the :class:`AckToken` protocol, so that records stay below the watermark (which imports
them) and the two do not import each other. Fan-out children
(flatten) and errors envelopes share their parent's token and index; the pipeline counts how many
outputs each record has and the watermark passes the record once the last of them is written (to
its sink or to the errors sink).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

if TYPE_CHECKING:
    from collections.abc import Mapping

Partition = str | int
EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


class AckToken(Protocol):
    """What a record's ``token`` is to the code that counts its outputs (``watermark.AckRange``)."""

    counts: list[int]
    """Per record of the token's range (by ``ack_index``): its outputs not yet written."""

    def released(self, count: int) -> None:
        """``count`` outputs of the range's records were written (their ``counts`` already lowered)."""


class Position(NamedTuple):
    """Where a record came from: a partition of the source and an integer offset in it.

    Offsets must increase within a partition in the order the source yields records. Kafka uses
    (partition, offset) directly; a polling source numbers what it reads (offset = a sequence it
    maps back to its cursor when acked). Immutable; a named tuple because one is built per record
    (``tuple.__new__(Position, (partition, offset))`` in a hot loop skips even the Python ``__new__``).
    """

    partition: Partition
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "offset": self.offset}


class Record:
    """One message. ``value`` is the JSON object once parsed; ``route`` is set by the router."""

    __slots__ = ("ack_index", "metadata", "position", "raw", "route", "size", "token", "value")

    def __init__(  # positional arguments are the fast way in a source's per-record loop
        self,
        value: dict[str, Any] | None = None,
        raw: bytes | None = None,
        metadata: Mapping[str, Any] = EMPTY_METADATA,
        position: Position | None = None,
        *,
        token: AckToken | None = None,
        ack_index: int = 0,
        route: int | None = None,
    ) -> None:
        self.value = value
        self.raw = raw
        self.metadata = metadata
        self.position = position
        self.token = token
        self.ack_index = ack_index
        self.route = route
        self.size = 0  # estimated JSON bytes, see payload_size; 0 = not estimated yet

    def child(self, value: dict[str, Any]) -> Record:
        """A fan-out child: same origin (position, token and index, metadata, raw), new value."""
        child = Record(
            value,
            raw=self.raw,
            metadata=self.metadata,
            position=self.position,
            token=self.token,
            ack_index=self.ack_index,
            route=self.route,
        )
        child.size = -1  # its raw bytes are the parent's: estimate from its own value
        return child

    def __repr__(self) -> str:
        return f"Record(value={self.value!r}, position={self.position!r}, route={self.route!r})"


class UndecodableRecord(Record):
    """A payload its source could not decode (e.g. bad Avro); the parse stage fails it with ``error``.

    ``raw`` keeps the payload as read, so the errors envelope shows it.
    """

    __slots__ = ("error",)

    def __init__(self, raw: bytes, error: str, **kwargs: Any) -> None:
        super().__init__(None, raw=raw, **kwargs)
        self.error = error


UNKNOWN_SIZE = 1024
"""The estimate for a value that cannot be encoded (it will fail at its sink anyway)."""


def payload_size(record: Record) -> int:
    """The record's size as JSON bytes, estimated once and kept in ``record.size``.

    The raw bytes as read when the record has its own (``size`` 0), else the encoded value (polling
    sources, flatten children, errors envelopes). What the pipeline bounds a sink batch by; the
    Python objects of a parsed record take about 5x this (docs: processor/README.md, Memory).
    """
    size = record.size
    if size > 0:
        return size
    raw = record.raw
    if size == 0 and raw is not None:
        size = len(raw) or 1
    else:
        try:
            size = len(orjson.dumps(record.value, option=orjson.OPT_NON_STR_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            size = UNKNOWN_SIZE
    record.size = size
    return size
