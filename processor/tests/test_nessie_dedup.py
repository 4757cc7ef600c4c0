"""The Nessie sink's replay plan without a server: which records of a batch an earlier process has
already committed (its positions in the snapshot summary), per partition."""

from __future__ import annotations

from dataflow_processor.connectors.nessie import Dedup
from dataflow_processor.records import Position, Record


def _out(partition: int, offset: int) -> Record:
    return Record({"id": offset}, position=Position(partition, offset))


def test_dedup_keeps_replaying_a_partition_while_others_commit() -> None:
    """Partition 1 is still being replayed when a batch of partition 0 commits: its skip survives."""
    dedup = Dedup()
    table = {"0": (9, 1), "1": (9, 1)}  # a killed process committed both through offset 9
    keep, plan = dedup.plan([_out(0, o) for o in range(8, 12)], table)
    assert keep == [False, False, True, True]
    state = dedup.advance([_out(0, 10), _out(0, 11)], table)
    dedup.settle(plan, state)
    keep, plan = dedup.plan([_out(1, o) for o in range(5, 12)], state)
    assert keep == [False] * 5 + [True, True]


def test_dedup_plans_a_retried_batch_from_the_same_state() -> None:
    dedup = Dedup()
    table = {"0": (3, 2)}  # two outputs of offset 3 are in
    batch = [_out(0, 3), _out(0, 3), _out(0, 3), _out(0, 4)]
    first, _ = dedup.plan(batch, table)
    again, _ = dedup.plan(batch, table)  # the write failed; the pipeline retries the batch
    assert first == again == [False, False, True, True]
