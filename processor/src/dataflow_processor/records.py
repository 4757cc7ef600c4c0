"""``Record`` and ``Position``: what flows through the pipeline.

A source hands the pipeline records carrying either a parsed ``value`` (a dict) or ``raw`` bytes
that the pipeline's parse stage decodes as JSON (a failure goes to the errors sink with the raw
text). ``raw`` is kept after parsing so an errors envelope can show the original payload.

``metadata`` is copy-on-write: it may be shared between a record and its fan-out children, so code
that changes it assigns a new dict (``rec.metadata = {**rec.metadata, k: v}``), never mutates it.

``token`` ties a record to its source position: the :class:`~dataflow_processor.watermark.AckRange`
of its source batch and partition, with the record's index in it in ``ack_index``. Fan-out children
(flatten) and errors envelopes share their parent's token and index; the pipeline counts how many
outputs each record has and the watermark passes the record once the last of them is written (to
its sink or to the errors sink).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dataflow_processor.watermark import AckRange

Partition = str | int
EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


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

    __slots__ = ("ack_index", "metadata", "position", "raw", "route", "token", "value")

    def __init__(  # positional arguments are the fast way in a source's per-record loop
        self,
        value: dict[str, Any] | None = None,
        raw: bytes | None = None,
        metadata: Mapping[str, Any] = EMPTY_METADATA,
        position: Position | None = None,
        *,
        token: AckRange | None = None,
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

    def child(self, value: dict[str, Any]) -> Record:
        """A fan-out child: same origin (position, token and index, metadata, raw), new value."""
        return Record(
            value,
            raw=self.raw,
            metadata=self.metadata,
            position=self.position,
            token=self.token,
            ack_index=self.ack_index,
            route=self.route,
        )

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
