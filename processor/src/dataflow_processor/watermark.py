"""Per-partition acknowledgement watermark: commit a position only when everything before it is done.

The pipeline registers every source record's position, in read order, and gets back an
:class:`AckToken`. Each output derived from the record holds the token; the pipeline sets
``pending`` to the number of outputs (0 → complete at once: a filtered-out record) and releases it
once per output written to its sink or to the errors sink. When ``pending`` reaches 0 the token is
*done*.

The watermark of a partition is **the next offset to read** (Kafka style): the offset of the last
done token in the contiguous run of done tokens at the head of that partition's queue, plus one.
A done token behind an unfinished one does not move the watermark (never past a gap). Offsets need
not be contiguous numbers (Kafka compaction and transaction markers leave holes); only the order
in which positions were registered matters. Records without a position never block anything.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataflow_processor.records import Partition, Position


class AckToken:
    """The ack counter shared by a source record and every output derived from it."""

    __slots__ = ("done", "partition", "pending", "position", "tracker")

    def __init__(self, tracker: WatermarkTracker | None, position: Position | None) -> None:
        self.tracker = tracker
        self.position = position
        self.pending = 0
        self.done = False

    def release(self, count: int = 1) -> None:
        """One (or ``count``) derived output finished; complete the position when none is left."""
        self.pending -= count
        if self.pending <= 0 and not self.done:
            self.complete()

    def complete(self) -> None:
        if self.done:
            return
        self.done = True
        if self.tracker is not None and self.position is not None:
            self.tracker.advance(self.position.partition)


class WatermarkTracker:
    """Tracks registered positions per partition and the committable watermark of each."""

    def __init__(self) -> None:
        self._queues: dict[Partition, deque[AckToken]] = {}
        self._watermarks: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}
        self.dirty = False

    def register(self, position: Position | None) -> AckToken:
        """Register a freshly read position (in read order) and return its token."""
        token = AckToken(self, position)
        if position is not None:
            queue = self._queues.get(position.partition)
            if queue is None:
                queue = self._queues[position.partition] = deque()
            queue.append(token)
        return token

    def advance(self, partition: Partition) -> None:
        """Pop the done head of ``partition``'s queue and move its watermark."""
        queue = self._queues.get(partition)
        if not queue:
            return
        last = None
        while queue and queue[0].done:
            last = queue.popleft()
        if last is not None and last.position is not None:
            self._watermarks[partition] = last.position.offset + 1
            self.dirty = True

    def forget(self, partition: Partition) -> None:
        """Drop a partition's in-flight state (e.g. Kafka revoked it; its records will be re-read)."""
        self._queues.pop(partition, None)
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
        """Registered positions not yet passed by the watermark."""
        return sum(len(q) for q in self._queues.values())
