"""Range acknowledgement: one AckRange per source batch and partition, counted per record.

The watermark must behave exactly as with one token per record: never past a record that still
has an output in flight (fan-out children, errors envelopes), whatever order outputs finish in,
within a batch or across batches; and it moves record by record inside the head range.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.records import Position, Record
from dataflow_processor.watermark import AckRange, WatermarkTracker, release_records, seal_batch
from dfp_helpers import chain_of, wait_for


def batch_of(*positions: tuple[int, int] | None) -> list[Record]:
    return [Record({"i": i}, position=Position(*p) if p is not None else None) for i, p in enumerate(positions)]


def dispatch(tracker: WatermarkTracker, batch: list[Record], outputs: dict[int, int]) -> list[Record]:
    """Register ``batch``, give record ``i`` ``outputs.get(i, 1)`` outputs, seal; return the outputs."""
    ranges = tracker.register_batch(batch)
    out = [record.child(dict(record.value or {})) for i, record in enumerate(batch) for _ in range(outputs.get(i, 1))]
    seal_batch(ranges, out)
    return out


def test_records_of_a_partition_share_a_range_in_read_order() -> None:
    tracker = WatermarkTracker()
    batch = batch_of((0, 5), (1, 0), (0, 6), (1, 1), (0, 9))
    ranges = tracker.register_batch(batch)
    assert len(ranges) == 2
    assert [r.token for r in batch] == [ranges[0], ranges[1], ranges[0], ranges[1], ranges[0]]
    assert [r.ack_index for r in batch] == [0, 0, 1, 1, 2]
    assert ranges[0].offsets == [5, 6, 9] and ranges[0].end == 10
    assert tracker.in_flight() == 5


def test_filtered_records_complete_at_seal_and_a_stuck_one_holds_exactly_its_offset() -> None:
    tracker = WatermarkTracker()
    batch = batch_of((0, 0), (0, 1), (0, 2), (0, 3))
    out = dispatch(tracker, batch, {0: 0, 1: 1, 2: 0, 3: 1})  # 0 and 2 filtered out
    assert tracker.watermarks() == {0: 1}  # record 0 is done, record 1 is not
    release_records([out[1]])  # record 3 written first
    assert tracker.watermarks() == {0: 1}
    release_records([out[0]])
    assert tracker.watermarks() == {0: 4}
    assert tracker.in_flight() == 0


def test_a_fully_filtered_batch_completes_at_once() -> None:
    tracker = WatermarkTracker()
    dispatch(tracker, batch_of((2, 7), (2, 8)), {0: 0, 1: 0})
    assert tracker.watermarks() == {2: 9}


def test_fan_out_holds_the_position_until_every_child_is_written() -> None:
    tracker = WatermarkTracker()
    batch = batch_of((0, 0), (0, 1), (0, 2))
    out = dispatch(tracker, batch, {1: 3})  # record 1 flattens into three children
    children = [o for o in out if o.ack_index == 1]
    release_records([out[0], children[0], children[2], out[-1]])
    assert tracker.watermarks() == {0: 1}
    release_records([children[1]])
    assert tracker.watermarks() == {0: 3}


def test_a_failure_holds_the_position_until_its_envelope_is_written() -> None:
    from dataflow_processor.errors_envelope import build_envelope

    tracker = WatermarkTracker()
    batch = batch_of((0, 0), (0, 1))
    ranges = tracker.register_batch(batch)
    # record 0 has an output for the sink; record 1 failed in the chain, its envelope goes to the errors sink
    seal_batch(ranges, [batch[0]], [batch[1]])
    envelope = build_envelope(batch[1], message="bad", stage="transform", namespace="n", name="n")
    assert envelope.token is batch[1].token and envelope.ack_index == 1
    release_records([batch[0]])
    assert tracker.watermarks() == {0: 1}
    release_records([envelope])
    assert tracker.watermarks() == {0: 2}


def test_a_later_batch_done_first_waits_for_the_earlier_one() -> None:
    tracker = WatermarkTracker()
    first = dispatch(tracker, batch_of((0, 0), (0, 1)), {})
    second = dispatch(tracker, batch_of((0, 2), (0, 3), (1, 0)), {})
    release_records(second)
    assert tracker.watermarks() == {1: 1}  # partition 1 has nothing older in flight
    release_records(first[1:])
    assert tracker.watermarks() == {1: 1}
    release_records(first[:1])
    assert tracker.watermarks() == {0: 4, 1: 1}
    assert tracker.in_flight() == 0


def test_partial_progress_continues_into_the_next_range_once_the_head_completes() -> None:
    tracker = WatermarkTracker()
    first = dispatch(tracker, batch_of((0, 0), (0, 1)), {})
    second = dispatch(tracker, batch_of((0, 2), (0, 3), (0, 4)), {})
    release_records(second[:2])  # 2 and 3 written while the first batch is still out
    assert tracker.watermarks() == {}
    release_records(first)
    assert tracker.watermarks() == {0: 4}  # through the first range and into the second one


def test_records_without_a_position_never_block() -> None:
    tracker = WatermarkTracker()
    out = dispatch(tracker, batch_of(None, (0, 0), None), {})
    release_records([out[1]])
    assert tracker.watermarks() == {0: 1}
    release_records([out[0], out[2]])  # harmless
    assert tracker.in_flight() == 0


def test_forgotten_partition_ignores_late_releases_of_its_old_ranges() -> None:
    tracker = WatermarkTracker()
    old = dispatch(tracker, batch_of((0, 0), (0, 1)), {})
    tracker.forget(0)
    new = dispatch(tracker, batch_of((0, 0), (0, 1)), {})  # re-assigned and re-read
    release_records(old)
    assert tracker.watermarks() == {}
    release_records(new)
    assert tracker.watermarks() == {0: 2}


def test_single_record_ranges_keep_the_token_api() -> None:
    tracker = WatermarkTracker()
    a, b = tracker.register(Position(0, 0)), tracker.register(Position(0, 1))
    assert isinstance(a, AckRange)
    a.pending = b.pending = 2
    b.release(2)
    a.release()
    assert tracker.watermarks() == {}
    a.release()
    assert tracker.watermarks() == {0: 2}


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[list[Position]], list[list[int]], int]:
    """Batches of positions over up to 3 partitions (holes allowed), outputs per record, a seed."""
    partitions = draw(st.integers(1, 3))
    next_offset = dict.fromkeys(range(partitions), 0)
    batches: list[list[Position]] = []
    outputs: list[list[int]] = []
    for _ in range(draw(st.integers(1, 5))):
        size = draw(st.integers(1, 6))
        batch = []
        for _ in range(size):
            p = draw(st.integers(0, partitions - 1))
            next_offset[p] += draw(st.integers(1, 2))
            batch.append(Position(p, next_offset[p]))
        batches.append(batch)
        outputs.append(draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)))
    return batches, outputs, draw(st.integers(0, 2**32))


@settings(max_examples=300)
@given(plans())
def test_watermark_never_passes_a_record_with_outputs_in_flight(
    plan: tuple[list[list[Position]], list[list[int]], int],
) -> None:
    batches, counts, seed = plan
    rng = random.Random(seed)
    tracker = WatermarkTracker()
    outstanding: dict[tuple[Any, int], int] = {}  # (partition, offset) → outputs not yet written
    in_flight: list[Record] = []
    previous: dict[Any, int] = {}

    def check() -> None:
        for partition, mark in tracker.watermarks().items():
            assert mark >= previous.get(partition, 0)  # monotonic
            previous[partition] = mark
            unfinished = [o for (p, o), n in outstanding.items() if p == partition and n > 0]
            if unfinished:
                assert mark <= min(unfinished)  # never past a gap
            done = [o for (p, o), n in outstanding.items() if p == partition and n == 0]
            assert mark - 1 in done  # one past a finished record

    for positions, outputs in zip(batches, counts, strict=True):
        batch = [Record({}, position=p) for p in positions]
        for position, n in zip(positions, outputs, strict=True):
            outstanding[(position.partition, position.offset)] = n
        ranges = tracker.register_batch(batch)
        produced = [record.child({}) for record, n in zip(batch, outputs, strict=True) for _ in range(n)]
        seal_batch(ranges, produced)
        in_flight.extend(produced)
        check()
        # writers finish a random chunk of what is in flight, in any order
        rng.shuffle(in_flight)
        cut = rng.randrange(len(in_flight) + 1)
        chunk, in_flight[:] = in_flight[:cut], in_flight[cut:]
        for record in chunk:
            assert record.position is not None
            outstanding[(record.position.partition, record.position.offset)] -= 1
        release_records(chunk)
        check()
    for record in in_flight:
        assert record.position is not None
        outstanding[(record.position.partition, record.position.offset)] -= 1
    release_records(in_flight)
    check()
    expected = {}
    for positions in batches:
        for p in positions:
            expected[p.partition] = p.offset + 1
    assert tracker.watermarks() == expected
    assert tracker.in_flight() == 0


async def test_pipeline_fan_out_and_errors_across_batches_commit_only_what_is_done() -> None:
    """Flatten fans records out across several sink batches; one child fails into the errors sink,
    whose writes are slow: the committed offset never passes the failed record until its envelope is in."""
    chain = chain_of({"type": "flatten", "flatten": {"field": "items"}})
    payloads = [{"id": i, "items": [{"n": i, "k": k} for k in range(3)]} for i in range(6)]
    source = MemorySource(payloads)
    gate = asyncio.Event()
    commits_before_errors: list[dict[Any, int]] = []

    class SlowErrors(MemorySink):
        async def write(self, batch: list[Record]) -> Any:
            commits_before_errors.append(dict(source.committed))
            await gate.wait()
            return await super().write(batch)

    errors = SlowErrors()
    main = MemorySink(batch_size=4, reject=lambda v: "no" if (v.get("n"), v.get("k")) == (2, 1) else None)
    settings_ = PipelineSettings(batch_size=2, linger_seconds=0.001, commit_interval=0.001)
    pipeline = Pipeline(source=source, chain=chain, sink=main, errors_sink=errors, settings=settings_)
    task = asyncio.create_task(pipeline.run())
    await wait_for(lambda: len(main.records) == 17 and commits_before_errors)
    await asyncio.sleep(0.05)
    assert source.committed == {0: 2}  # record 2's rejected child is still on its way to the errors sink
    assert all(c.get(0, 0) <= 2 for c in commits_before_errors)
    gate.set()
    await asyncio.wait_for(task, 5)
    assert source.committed == {0: 6}
    assert len(errors.records) == 1
