"""In-process source and sink: for the pipeline's own tests and for ``preview``.

``MemorySource`` yields records given up front (and/or pushed later), numbering them per partition
(round-robin over ``partitions``), and records every ``ack``. With ``follow=True`` it waits for more
records after the given ones until ``finish()`` or ``close()``; otherwise it ends after them.

``MemorySink`` keeps what it was given in ``records`` and can misbehave on purpose: fail the next
``transient_failures`` writes with :class:`TransientError`, reject records with ``reject(value)``
returning an error text (reported per record in the ``WriteResult``, or raised as
:class:`PermanentRecordError` when ``reject_raises``), and sleep ``delay`` per write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import orjson

from dataflow_processor.connectors.base import (
    BatchPolicy,
    PermanentRecordError,
    RecordFailure,
    Sink,
    Source,
    TransientError,
    WriteResult,
)
from dataflow_processor.records import Partition, Position, Record

Payload = bytes | str | dict[str, Any] | Record


class MemorySource(Source):
    type_name = "memory"

    def __init__(self, payloads: Iterable[Payload] = (), *, partitions: int = 1, follow: bool = False) -> None:
        self.partitions = partitions
        self.follow = follow
        self._pending: asyncio.Queue[Record | None] = asyncio.Queue()
        self._next_offset: dict[Partition, int] = {}
        self._count = 0
        self.acks: list[dict[Partition, int]] = []
        self.committed: dict[Partition, int] = {}
        self.connected = False
        self.closed = False
        self.read_count = 0
        self.push(payloads)

    def _record(self, payload: Payload) -> Record:
        if isinstance(payload, Record):
            return payload
        partition = self._count % self.partitions
        self._count += 1
        offset = self._next_offset.get(partition, 0)
        self._next_offset[partition] = offset + 1
        position = Position(partition, offset)
        metadata = {"partition": partition, "offset": offset}
        if isinstance(payload, dict):
            return Record(raw=orjson.dumps(payload), metadata=metadata, position=position)
        raw = payload.encode() if isinstance(payload, str) else payload
        return Record(raw=raw, metadata=metadata, position=position)

    def push(self, payloads: Iterable[Payload]) -> None:
        for payload in payloads:
            self._pending.put_nowait(self._record(payload))

    def finish(self) -> None:
        """No more records: the iteration ends once the queued ones are yielded."""
        self._pending.put_nowait(None)

    async def connect(self) -> None:
        self.connected = True
        if not self.follow:
            self.finish()

    async def batches(self, policy: BatchPolicy) -> AsyncIterator[list[Record]]:
        while True:
            first = await self._pending.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + policy.linger_seconds
            ended = False
            while len(batch) < policy.max_records:
                try:
                    item = self._pending.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._pending.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    ended = True
                    break
                batch.append(item)
            self.read_count += len(batch)
            yield batch
            if ended:
                return

    async def ack(self, watermarks: Mapping[Partition, int]) -> None:
        for partition, offset in watermarks.items():
            previous = self.committed.get(partition, 0)
            if offset < previous:
                raise AssertionError(f"watermark of partition {partition} moved back: {previous} → {offset}")
            self.committed[partition] = offset
        self.acks.append(dict(watermarks))

    async def close(self) -> None:
        self.closed = True
        self._pending.put_nowait(None)


class MemorySink(Sink):
    type_name = "memory"

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        transient_failures: int = 0,
        reject: Callable[[dict[str, Any]], str | None] | None = None,
        reject_raises: bool = False,
        delay: float = 0.0,
        on_write: Callable[[list[Record]], None] | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.transient_failures = transient_failures
        self.reject = reject
        self.reject_raises = reject_raises
        self.delay = delay
        self.on_write = on_write
        self.records: list[Record] = []
        self.write_calls = 0
        self.connected = False
        self.closed = False

    @property
    def values(self) -> list[dict[str, Any]]:
        return [r.value for r in self.records if r.value is not None]

    async def connect(self) -> None:
        self.connected = True

    async def write(self, batch: list[Record]) -> WriteResult:
        self.write_calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise TransientError("memory sink: simulated connection loss")
        failures: list[RecordFailure] = []
        written: list[Record] = []
        for index, record in enumerate(batch):
            problem = self.reject(record.value or {}) if self.reject is not None else None
            if problem is None:
                written.append(record)
                continue
            if self.reject_raises:
                raise PermanentRecordError(index, problem)
            failures.append(RecordFailure(index, problem, "constraint_violation"))
        self.records.extend(written)
        if self.on_write is not None:
            self.on_write(written)
        return WriteResult(failures)

    async def close(self) -> None:
        self.closed = True
