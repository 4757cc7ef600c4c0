"""Connector interfaces: what a source and a sink must do, and how a sink reports failures.

**Source** — ``connect()``, then ``batches(policy)`` (an async iterator of ``list[Record]``), then
``ack(watermarks)`` as the pipeline finishes records, and ``close()``.

* Records carry ``raw`` bytes (the pipeline parses JSON) or a ready ``value`` dict, ``metadata``
  and a :class:`~dataflow_processor.records.Position`; offsets increase per partition in yield order.
* ``batches`` should yield up to ``policy.max_records`` records, waiting at most
  ``policy.linger_seconds`` for more once it has one (Kafka: ``getmany``). Backpressure is
  automatic: the pipeline does not ask for the next batch while its queues are full, so the
  iteration simply blocks.
* ``ack(watermarks)`` receives, per partition, **the next offset to read** (Kafka's commit
  convention): every record of that partition below it has been written to its sink or to the
  errors sink. It never moves backwards and never passes an unfinished record. A polling source
  persists its checkpoint here. It is called from time to time and once more on shutdown.
* ``revoked(partitions)``: a source that loses partitions (Kafka rebalance) calls the callback the
  pipeline installs via ``on_revoked`` so in-flight state for them is dropped.

**Sink** — ``connect()``, ``write(batch) -> WriteResult``, ``close()``.

* ``write`` gets up to ``batch_size`` records (``None`` → the pipeline's default) and returns a
  :class:`WriteResult` listing the indexes of records that failed *permanently* (bad value,
  constraint violation); the others are written. Those records, and only those, go to the errors
  sink.
* Raise :class:`TransientError` (or let ``ConnectionError``/``TimeoutError``/``OSError`` escape)
  when nothing can be written now: the pipeline retries the same batch with capped exponential
  backoff and does not advance the source meanwhile. Any other unexpected exception is treated as
  transient too (nothing is lost; it is logged with its traceback).
* Raise :class:`PermanentRecordError` with ``index`` when record ``index`` is bad **and nothing of
  the batch was written** (e.g. a COPY/transaction aborted by one row): the pipeline moves that
  record to the errors sink and writes the rest again.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dataflow_processor.records import Partition, Record


class TransientError(Exception):
    """Nothing could be written now (connection, timeout, overload); retry the batch later."""


class PermanentRecordError(Exception):
    """Record ``index`` of the batch can never be written; nothing of the batch was written."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record of a written batch that failed permanently; ``error_type`` as in the metrics."""

    index: int
    error: str
    error_type: str = "invalid_data"


@dataclass(slots=True)
class WriteResult:
    """Outcome of ``Sink.write``: the permanent per-record failures (empty = all written)."""

    failures: list[RecordFailure] = field(default_factory=list)

    @classmethod
    def ok(cls) -> WriteResult:
        return cls()


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How big a source batch may get and how long to wait to fill it."""

    max_records: int = 500
    linger_seconds: float = 0.05


class CheckpointStore(ABC):
    """Where a polling source keeps its position: load and save one JSON document.

    An interface here, beside :class:`ConnectorContext` that carries it; the stores themselves (a
    file, the DataFlow's checkpoint ConfigMap) are in :mod:`.checkpoint`.
    """

    where: str = ""

    @abstractmethod
    async def load(self) -> dict[str, Any] | None: ...

    @abstractmethod
    async def save(self, state: dict[str, Any]) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional
        """Write what a rate limit held back."""


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector knows about where it runs. ``role``: source, sink, errors, route:<n>.

    ``checkpoints``: where a polling source keeps its position (the CLI opens it once per DataFlow);
    ``None`` → the store :func:`~.checkpoint.open_checkpoint_store` chooses for ``namespace/name``.
    """

    namespace: str
    name: str
    role: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("dataflow_processor.connector"))
    checkpoints: CheckpointStore | None = None


def classify_error(exc: BaseException) -> str:
    """The metrics ``error_type`` of an exception raised by a connector."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, (ConnectionError, OSError)):
        return "connection_error"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, PermanentRecordError):
        return "invalid_data"
    return "unknown"


RevokedCallback = Callable[[list[Partition]], None]


class Source(ABC):
    """A stream of record batches with acknowledgement by per-partition watermark."""

    type_name: str = ""

    def on_revoked(self, callback: RevokedCallback) -> None:  # noqa: B027 - optional hook
        """Install the pipeline's callback for partitions this source lost (default: unused)."""

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    def batches(self, policy: BatchPolicy) -> AsyncIterator[list[Record]]: ...

    @abstractmethod
    async def ack(self, watermarks: Mapping[Partition, int]) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class Sink(ABC):
    """Writes batches; reports per-record permanent failures in the result."""

    type_name: str = ""
    batch_size: int | None = None
    flush_interval: float | None = None

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def write(self, batch: list[Record]) -> WriteResult: ...

    @abstractmethod
    async def close(self) -> None: ...
