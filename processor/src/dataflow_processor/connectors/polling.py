"""The polling source: what PostgreSQL, Trino and Nessie share when they read a table by a cursor.

A polling source cannot ask the server where it stopped, so it keeps a cursor: the position after
the last row it emitted. This base owns everything about that cursor; a technology supplies only
how to read:

* :meth:`PollingSource.pages` — one poll's rows after a cursor, in pages (the server's query);
* :meth:`PollingSource.cursor_of` — the cursor after a row (a key, a key tuple, a file and row);
* :meth:`PollingSource.identity` — what a cursor belongs to (table, query, key columns);
* :meth:`PollingSource.to_record` — a row as record value and metadata (:mod:`.values` rule);

and, when its cursor is not JSON already, :meth:`~PollingSource.encode_cursor` /
:meth:`~PollingSource.decode_cursor`.

**Polls.** Every ``poll_interval`` seconds (counted from the start of a poll) the source reads
the rows after its cursor. A source that reads one page per poll (``reads_one_page``: a keyset
query with a ``LIMIT``) reads again at once when that page came back full, since more may be
waiting. A failed poll (:meth:`~PollingSource.retryable`) is logged and retried after
``poll_interval``; the cursor stays after the last row emitted, so no row is read twice by the
same process. Records are numbered on one partition (:attr:`~PollingSource.partition`) in the
order read, and batches hold at most ``policy.max_records`` of them.

**Acknowledgement and checkpoint.** ``ack`` gets the watermark (the next offset not yet done);
the cursor of the last row below it is saved as a :class:`~.checkpoint.Checkpoint` — never the
cursor of a row at or past the watermark, so the checkpoint never runs ahead of the sinks. A
failed save keeps those rows pending: the pipeline's next ``ack`` saves them. ``connect`` restores
the checkpoint when its source and identity match this source's, and reads from the start
otherwise (a changed table, query or key column must not resume from a foreign cursor). A source
that does not follow a cursor (``tracks_position`` false: a query re-run as is every poll) neither
restores nor saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext, Source
from dataflow_processor.connectors.checkpoint import Checkpoint, CheckpointStore, checkpoint_store
from dataflow_processor.records import Partition, Position, Record

RowT = TypeVar("RowT")
CursorT = TypeVar("CursorT")


class CursorColumnError(ValueError):
    """The rows cannot be followed (their cursor column is missing): the source stops, no retry."""


class PollingSource(Source, Generic[RowT, CursorT]):
    """A table read by cursor, polled; subclasses implement the hooks in the module docstring."""

    partition: Partition = 0
    poll_interval: float = 5.0
    first_offset = 0

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.store: CheckpointStore | None = None
        self.read_cursor: CursorT | None = None  # after the last row read (in memory)
        self.saved_cursor: CursorT | None = None  # after the last row acknowledged (in the checkpoint)
        self._inflight: deque[tuple[int, CursorT]] = deque()  # (offset, cursor after it), read, not acked
        self._next_offset = self.first_offset
        self._closed = asyncio.Event()
        self.polls = 0

    # ------------------------------------------------------------------ technology hooks

    @property
    def tracks_position(self) -> bool:
        """Whether rows are followed by a cursor (restored, saved); otherwise every poll reads all."""
        return True

    @property
    def reads_one_page(self) -> bool:
        """Whether a poll is one page after the cursor, so that a full page means: read again now."""
        return False

    def page_size(self, policy: BatchPolicy) -> int:
        """Rows per page the technology reads (and, with ``reads_one_page``, the "full" mark)."""
        return policy.max_records

    @abstractmethod
    async def open(self) -> None:
        """Connect to the server and check the configuration against it."""

    @abstractmethod
    async def shut(self) -> None:
        """Release the server connection."""

    @abstractmethod
    def pages(self, after: CursorT | None, page_size: int) -> AsyncGenerator[Sequence[RowT], None]:
        """One poll's rows after ``after`` (``None``: from the start), in pages, in cursor order."""

    @abstractmethod
    def cursor_of(self, row: RowT) -> CursorT:
        """The cursor after ``row``; :class:`CursorColumnError` when the row has no cursor."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON naming what a cursor belongs to; a checkpoint with another identity is not resumed."""

    @abstractmethod
    def to_record(self, row: RowT) -> tuple[dict[str, Any], Mapping[str, Any]]:
        """The record value and metadata of ``row``."""

    def encode_cursor(self, cursor: CursorT) -> Any:
        """The cursor as JSON (default: it is JSON already)."""
        return cursor

    def decode_cursor(self, stored: Any) -> CursorT | None:
        """A stored cursor back in memory, or ``None`` when it does not fit this source."""
        return stored  # type: ignore[no-any-return]

    def retryable(self, exc: Exception) -> bool:
        """Whether a poll that raised ``exc`` is retried after ``poll_interval`` (else it stops the source)."""
        return True

    def describe(self) -> str:
        """What is polled, for log lines."""
        return str(self.partition)

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        await self.open()
        if self.store is None:
            self.store = checkpoint_store(self.context)
        if self.tracks_position:
            await self._restore(self.store)

    async def _restore(self, store: CheckpointStore) -> None:
        log = self.context.logger
        document = await store.load()
        if document is None:
            log.info("%s source: no checkpoint in %s, reading from the start", self.type_name, store.where)
            return
        checkpoint = Checkpoint.from_document(document)
        if checkpoint is None or checkpoint.source != self.type_name or checkpoint.identity != self.identity():
            log.warning(
                "%s source: the checkpoint in %s was made for another source configuration (%s); "
                "reading from the start",
                self.type_name,
                store.where,
                checkpoint.identity if checkpoint is not None else document,
            )
            return
        cursor = self.decode_cursor(checkpoint.cursor)
        if cursor is None:
            what = checkpoint.cursor
            log.warning(
                "%s source: unusable cursor %r in %s, reading from the start", self.type_name, what, store.where
            )
            return
        self.read_cursor = self.saved_cursor = cursor
        where = store.where
        log.info("%s source: resuming %s after %r (checkpoint in %s)", self.type_name, self.describe(), cursor, where)

    async def close(self) -> None:
        self._closed.set()
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
        await self.shut()

    # ------------------------------------------------------------------ reading

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    async def batches(self, policy: BatchPolicy) -> AsyncIterator[list[Record]]:
        size = self.page_size(policy)
        while not self._closed.is_set():
            started = time.monotonic()
            self.polls += 1
            last_page = 0
            try:
                # aclosing: a poll left early (close, an error) releases the technology's connection now
                after = self.read_cursor if self.tracks_position else None
                async with contextlib.aclosing(self.pages(after, size)) as pages:
                    async for rows in pages:
                        last_page = len(rows)
                        records = self._records(rows)
                        for start in range(0, len(records), policy.max_records):
                            yield records[start : start + policy.max_records]
                        if self._closed.is_set():
                            return
            except CursorColumnError:
                raise
            except Exception as exc:
                if not self.retryable(exc):
                    raise
                self.context.logger.warning(
                    "%s source: polling %s failed, retrying in %ss: %s",
                    self.type_name,
                    self.describe(),
                    self.poll_interval,
                    exc,
                )
                await self._sleep(self.poll_interval)
                continue
            if self.reads_one_page and last_page >= size:
                continue  # a full page: more may be waiting
            await self._sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    def _records(self, rows: Sequence[RowT]) -> list[Record]:
        records: list[Record] = []
        track = self.tracks_position
        partition = self.partition
        for row in rows:
            value, metadata = self.to_record(row)
            offset = self._next_offset
            self._next_offset += 1
            if track:
                cursor = self.cursor_of(row)
                self.read_cursor = cursor
                self._inflight.append((offset, cursor))
            records.append(Record(value, metadata=metadata, position=Position(partition, offset)))
        return records

    # ------------------------------------------------------------------ acknowledgement

    async def ack(self, watermarks: Mapping[Partition, int]) -> None:
        mark = watermarks.get(self.partition)
        if mark is None or not self._inflight:
            return
        done = 0
        for offset, _cursor in self._inflight:
            if offset >= mark:
                break
            done += 1
        if not done:
            return
        cursor = self._inflight[done - 1][1]
        if cursor != self.saved_cursor:
            assert self.store is not None
            checkpoint = Checkpoint(
                self.type_name, self.identity(), self.encode_cursor(cursor), dt.datetime.now(dt.UTC).isoformat()
            )
            await self.store.save(checkpoint.to_document())  # raises → the pipeline acks again later
            self.saved_cursor = cursor
        for _ in range(done):
            self._inflight.popleft()
