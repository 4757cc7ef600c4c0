"""Property tests: case conversions round-trip, and the watermark never passes unfinished work."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_processor.records import Position
from dataflow_processor.transforms.camel_case import to_camel
from dataflow_processor.transforms.snake_case import to_snake
from dataflow_processor.watermark import WatermarkTracker

# snake_case words of two or more characters (a single-letter part followed by another single
# letter part is ambiguous: "a_b" → "AB" → "ab", in the original too)
snake_words = st.lists(st.from_regex(r"[a-z][a-z0-9]{1,7}", fullmatch=True), min_size=1, max_size=5)
pascal_words = st.lists(st.from_regex(r"[A-Z][a-z0-9]{1,7}", fullmatch=True), min_size=1, max_size=5)


@given(snake_words)
def test_snake_camel_snake_round_trip(words: list[str]) -> None:
    key = "_".join(words)
    assert to_snake(to_camel(key)) == key


@given(pascal_words)
def test_camel_snake_camel_round_trip(words: list[str]) -> None:
    key = "".join(words)
    assert to_camel(to_snake(key)) == key


@given(st.text(max_size=30))
def test_snake_is_idempotent(key: str) -> None:
    assert to_snake(to_snake(key)) == to_snake(key)


@given(st.text(max_size=30))
def test_camel_is_idempotent_and_has_no_underscores(key: str) -> None:
    once = to_camel(key)
    assert "_" not in once
    assert to_camel(once) == once


@st.composite
def completion_plans(draw: st.DrawFn) -> tuple[list[Position], list[int]]:
    partitions = draw(st.integers(1, 3))
    count = draw(st.integers(1, 40))
    positions: list[Position] = []
    next_offset = dict.fromkeys(range(partitions), 0)
    for _ in range(count):
        p = draw(st.integers(0, partitions - 1))
        next_offset[p] += draw(st.integers(1, 3))  # offsets may have holes (compaction)
        positions.append(Position(p, next_offset[p]))
    order = draw(st.permutations(range(count)))
    stop_after = draw(st.integers(0, count))
    return positions, list(order)[:stop_after]


@settings(max_examples=300)
@given(completion_plans())
def test_watermark_never_passes_an_unfinished_record(plan: tuple[list[Position], list[int]]) -> None:
    positions, completions = plan
    tracker = WatermarkTracker()
    tokens = [tracker.register(p) for p in positions]
    for t in tokens:
        t.pending = 1
    done: set[int] = set()
    previous: dict[object, int] = {}
    for index in completions:
        tokens[index].release()
        done.add(index)
        marks = tracker.watermarks()
        for partition, mark in marks.items():
            assert mark >= previous.get(partition, 0)  # monotonic
            previous[partition] = mark
            unfinished = [p.offset for i, p in enumerate(positions) if p.partition == partition and i not in done]
            if unfinished:
                assert mark <= min(unfinished)  # never past a gap
            finished = [p.offset for i, p in enumerate(positions) if p.partition == partition and i in done]
            assert mark - 1 in finished  # it is exactly one past a finished record
    # once everything is done, every partition is committed to one past its last offset
    if len(done) == len(positions):
        expected = {}
        for p in positions:
            expected[p.partition] = p.offset + 1
        assert tracker.watermarks() == expected
        assert tracker.in_flight() == 0


def test_zero_output_record_completes_at_once() -> None:
    tracker = WatermarkTracker()
    a, b = tracker.register(Position(0, 0)), tracker.register(Position(0, 1))
    b.pending = 0
    b.complete()
    assert tracker.watermarks() == {}
    a.complete()
    assert tracker.watermarks() == {0: 2}
