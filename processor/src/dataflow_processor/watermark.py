"""Per-partition acknowledgement watermark: commit a position only when everything before it is done.

The pipeline registers every source batch with :meth:`WatermarkTracker.register_batch`, in read
order. The records of one partition in one batch share an :class:`AckRange` (the record's
``token``; its index in the range is the record's ``ack_index``). The range keeps, per record, the
number of its outputs still outstanding (``counts``) and their sum (``pending``):

* after the chain ran, the pipeline makes one call, :func:`seal_batch`: it counts one per output
  derived from a record (``hold``: N for a flatten fan-out, 1 for a failure headed to the errors
  sink) and then ``seal``\\ s the ranges of the batch; a record with no output (filtered out) is
  done at once;
* each output written to its sink or to the errors sink is released once
  (:func:`release_records`, in bulk per written chunk).

The watermark of a partition is **the next offset to read** (Kafka style): one past the last record
of the contiguous run of done records at the head of that partition's ranges. A whole range that is
done moves it to one past the range's last offset; inside the head range it moves record by record,
so a stuck record holds exactly its own offset and never anything before it. A done record behind
an unfinished one does not move the watermark (never past a gap), whichever batch or partition it
belongs to and in whichever order the writers finish. Offsets need not be contiguous numbers (Kafka
compaction and transaction markers leave holes); only the order in which positions were registered
matters. Records without a position share a range that tracks nothing and never blocks anything.

Per record the bookkeeping is an index into two lists; objects and method calls are per range and
per written chunk, not per record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataflow_processor.records import AckToken, Partition, Position, Record


class AckRange:
    """The ack state of the records of one partition read in one source batch (in read order).

    ``offsets[i]`` is the source offset of the range's record ``i`` and ``counts[i]`` the number of
    its outputs not yet written; ``pending`` is their sum, ``head`` the number of leading records
    known to be done. ``tracker`` is ``None`` for a range of records without a position.
    """

    __slots__ = ("counts", "done", "head", "offsets", "partition", "pending", "sealed", "tracker")

    def __init__(self, tracker: WatermarkTracker | None, partition: Partition | None) -> None:
        self.tracker = tracker
        self.partition = partition
        self.offsets: list[int] = []
        self.counts: list[int] = []
        self.pending = 0
        self.head = 0
        self.sealed = False  # counts are final: records with 0 left are done
        self.done = False

    @property
    def end(self) -> int:
        """The next offset to read once the whole range is done."""
        return self.offsets[-1] + 1

    def seal(self) -> None:
        """The outputs of every record are counted (``hold``): take their sum, complete what has none."""
        self.pending = sum(self.counts)
        self.sealed = True
        if self.pending <= 0:
            self.complete()
        elif self.tracker is not None:
            self.tracker.progress(self)

    def release(self, count: int = 1) -> None:
        """``count`` outputs of the range finished, without saying whose: the range completes when none
        is left. (Single-record ranges from :meth:`WatermarkTracker.register` use this; the pipeline
        releases by record with :func:`release_records`.)"""
        self.pending -= count
        if self.pending <= 0 and not self.done:
            self.complete()

    def released(self, count: int) -> None:
        """``count`` outputs of records of this range finished (their ``counts`` already lowered)."""
        self.pending -= count
        if self.pending <= 0:
            if not self.done:
                self.complete()
        elif self.tracker is not None:
            self.tracker.progress(self)

    def complete(self) -> None:
        """Every record of the range is done."""
        if self.done:
            return
        self.done = True
        self.head = len(self.counts)
        if self.tracker is not None:
            self.tracker.advance(self.partition)  # type: ignore[arg-type]


def hold(records: Iterable[Record]) -> None:
    """Count one outstanding output for each record (an output, or a failure for the errors sink)."""
    for record in records:
        token = record.token
        if token is not None:
            token.counts[record.ack_index] += 1


def seal_batch(ranges: Iterable[AckRange], outputs: Iterable[Record], failed: Iterable[Record] = ()) -> None:
    """Count the outputs and the failures of a transformed batch, then seal the batch's ranges.

    One synchronous call because the order is the guarantee: a range sealed before its outputs are
    counted completes at once and lets the watermark pass records whose outputs are not written yet.
    The pipeline enqueues the outputs only after this returns, so no writer releases one uncounted.
    """
    hold(outputs)
    hold(failed)
    for ack_range in ranges:
        ack_range.seal()


def release_records(records: Iterable[Record]) -> None:
    """One output of each record is written (to its sink or to the errors sink)."""
    last: AckToken | None = None
    count = 0
    for record in records:
        token = record.token
        if token is None:
            continue
        if token is not last:
            if last is not None:
                last.released(count)
            last = token
            count = 0
        token.counts[record.ack_index] -= 1
        count += 1
    if last is not None:
        last.released(count)


class WatermarkTracker:
    """Tracks registered ranges per partition and the committable watermark of each."""

    def __init__(self) -> None:
        self._queues: dict[Partition, deque[AckRange]] = {}
        self._watermarks: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}
        self._records: dict[Partition, int] = {}  # registered records per partition, not yet passed
        self.dirty = False

    def register_batch(self, batch: list[Record]) -> list[AckRange]:
        """Register a freshly read batch (in read order): set each record's ``token`` and ``ack_index``.

        Returns the batch's ranges; give them to :func:`seal_batch` with the outputs once transformed.
        """
        ranges: dict[Partition | None, AckRange] = {}
        last_partition: Partition | None = None
        current: AckRange | None = None
        offsets: list[int] = []
        for record in batch:
            position = record.position
            partition = position.partition if position is not None else None
            if partition != last_partition or current is None:
                current = ranges.get(partition)
                if current is None:
                    current = ranges[partition] = AckRange(self if position is not None else None, partition)
                offsets = current.offsets
                last_partition = partition
            record.token = current
            record.ack_index = len(offsets)
            offsets.append(position.offset if position is not None else -1)
        for partition, ack_range in ranges.items():
            size = len(ack_range.offsets)
            ack_range.counts = [0] * size
            if partition is not None:
                self._enqueue(partition, ack_range, size)
        return list(ranges.values())

    def register(self, position: Position | None) -> AckRange:
        """Register one position (in read order) as a range of its own; set its ``pending`` yourself."""
        partition = position.partition if position is not None else None
        token = AckRange(self if position is not None else None, partition)
        token.offsets.append(position.offset if position is not None else -1)
        token.counts.append(1)  # its count lives in ``pending``: the record is done when the range is
        token.sealed = True
        if partition is not None:
            self._enqueue(partition, token, 1)
        return token

    def _enqueue(self, partition: Partition, ack_range: AckRange, size: int) -> None:
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = deque()
        queue.append(ack_range)
        self._records[partition] = self._records.get(partition, 0) + size

    def advance(self, partition: Partition) -> None:
        """Pop the done ranges at the head of ``partition``'s queue and move its watermark."""
        queue = self._queues.get(partition)
        if not queue:
            return
        last = None
        passed = 0
        while queue and queue[0].done:
            last = queue.popleft()
            passed += len(last.offsets)
        if last is not None:
            self._records[partition] -= passed
            self._watermarks[partition] = last.end
            self.dirty = True
        if queue:
            self.progress(queue[0])

    def progress(self, ack_range: AckRange) -> None:
        """Move the watermark through the done records at the start of ``ack_range`` if it is the head."""
        queue = self._queues.get(ack_range.partition)  # type: ignore[arg-type]
        if not queue or queue[0] is not ack_range or not ack_range.sealed:
            return
        counts = ack_range.counts
        head = start = ack_range.head
        size = len(counts)
        while head < size and counts[head] <= 0:
            head += 1
        if head != start:
            ack_range.head = head
            self._watermarks[ack_range.partition] = ack_range.offsets[head - 1] + 1  # type: ignore[index]
            self.dirty = True

    def forget(self, partition: Partition) -> None:
        """Drop a partition's in-flight state (e.g. Kafka revoked it; its records will be re-read)."""
        self._queues.pop(partition, None)
        self._records.pop(partition, None)
        self._watermarks.pop(partition, None)
        self._committed.pop(partition, None)

    def watermarks(self) -> dict[Partition, int]:
        """Current watermark (next offset to read) of every partition that has one."""
        return dict(self._watermarks)

    def uncommitted(self) -> dict[Partition, int]:
        """Watermarks that moved since the last :meth:`mark_committed`."""
        return {p: w for p, w in self._watermarks.items() if self._committed.get(p) != w}

    def mark_committed(self, watermarks: dict[Partition, int]) -> None:
        self._committed.update(watermarks)
        self.dirty = bool(self.uncommitted())

    def in_flight(self) -> int:
        """Registered records not yet passed by the watermark (a partly passed head range counts whole)."""
        return sum(self._records.values())
