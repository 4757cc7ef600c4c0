"""Bounds on what one record or one spec can make the processor hold: flatten's fan-out cap, sink
batches flushed by bytes whatever batchSize says, batch sizes the models refuse; and records nested
deeper than JSON encoding allows, which must still reach the errors sink (or the log) whole."""

from __future__ import annotations

import io
import json
import logging

import orjson
import pytest

from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.errors_envelope import encodable
from dataflow_processor.logging_json import JsonFormatter
from dataflow_processor.pipeline import MIN_PENDING_BYTES, Pipeline, PipelineSettings
from dataflow_processor.records import Position, Record, payload_size
from dataflow_processor.spec.loader import SpecError, parse_spec
from dataflow_processor.transforms.flatten import MAX_FANOUT
from dfp_helpers import chain_of

FAST = PipelineSettings(batch_size=50, linger_seconds=0.001, commit_interval=0.001, queue_size=2)
FLATTEN = {"type": "flatten", "flatten": {"field": "items"}}


async def test_flatten_over_the_cap_sends_the_whole_record_to_the_errors_sink() -> None:
    big = {"order": 7, "items": list(range(MAX_FANOUT + 1))}
    source = MemorySource([{"order": 1, "items": [1, 2]}, big, {"order": 3, "items": list(range(MAX_FANOUT))}])
    sink, errors = MemorySink(), MemorySink()
    await Pipeline(source=source, chain=chain_of(FLATTEN), sink=sink, errors_sink=errors, settings=FAST).run()
    assert len(sink.values) == 2 + MAX_FANOUT  # the records within the cap are flattened in full
    assert {v["order"] for v in sink.values} == {1, 3}
    [envelope] = errors.values
    message = envelope["error"]["message"]
    assert f"holds {MAX_FANOUT + 1} elements, more than the {MAX_FANOUT}" in message
    assert "record at 0/1" in message  # names the record
    assert envelope["original_message"] == big  # whole, nothing of it was emitted
    assert source.committed == {0: 3}


async def test_a_sink_batch_is_written_once_it_holds_its_share_of_bytes() -> None:
    """batchSize 100,000 of 64 KiB records would be 6 GiB; the writer cuts at its byte share."""
    payload = "x" * 65536
    source = MemorySource([{"id": i, "blob": payload} for i in range(100)])
    sink = MemorySink(batch_size=100_000)
    sink.flush_interval = 60.0  # only size or bytes can trigger a write before the end
    batches: list[int] = []
    sink.on_write = lambda recs: batches.append(len(recs))
    settings = PipelineSettings(batch_size=100, linger_seconds=0.001, max_pending_bytes=2 * MIN_PENDING_BYTES)
    pipeline = Pipeline(source=source, chain=chain_of(), sink=sink, settings=settings)
    assert pipeline.pending_bytes_cap == 2 * MIN_PENDING_BYTES  # one sink: the whole budget
    await pipeline.run()
    assert sum(batches) == 100 and len(sink.values) == 100
    record_bytes = len(orjson.dumps({"id": 0, "blob": payload}))
    per_batch = -(-2 * MIN_PENDING_BYTES // record_bytes)  # the fewest records reaching 2 MiB
    assert batches[: len(batches) - 1] == [per_batch] * (len(batches) - 1)
    assert batches[-1] <= per_batch


def test_the_byte_budget_is_shared_by_every_sink() -> None:
    settings = PipelineSettings(max_pending_bytes=32 * MIN_PENDING_BYTES)
    routes = {0: MemorySink(), 1: MemorySink()}
    spec_chain = chain_of({"type": "router", "router": {"routes": [
        {"condition": "a == 1", "sink": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "a"}}},
        {"condition": "a == 2", "sink": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "b"}}},
    ]}})  # fmt: skip
    pipeline = Pipeline(
        source=MemorySource([]), chain=spec_chain, sink=MemorySink(), route_sinks=routes,
        errors_sink=MemorySink(), settings=settings,
    )  # fmt: skip
    assert pipeline.pending_bytes_cap == 8 * MIN_PENDING_BYTES  # main, two routes, errors


def test_payload_size_of_raw_value_and_fan_out_child() -> None:
    raw = b'{"a": [1, 2, 3]}'
    parent = Record(orjson.loads(raw), raw, position=Position(0, 0))
    assert payload_size(parent) == len(raw)
    child = parent.child({"a": 1})
    assert payload_size(child) == len(b'{"a":1}')  # its own value, not the parent's bytes
    assert payload_size(Record({"k": "v" * 100})) == len(orjson.dumps({"k": "v" * 100}))


PG = {"connectionString": "d", "table": "t"}
NESSIE = {"baseURL": "u", "namespace": "n", "table": "t"}


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"type": "postgresql", "postgresql": {**PG, "batchSize": 1_000_000}}, "batchSize"),
        ({"type": "nessie", "nessie": {**NESSIE, "batchSize": 10_000_000}}, "batchSize"),
    ],
)
def test_batch_sizes_beyond_what_512_mib_holds_are_refused(block: dict, field: str) -> None:
    spec = {"source": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}, "sink": block}
    with pytest.raises(SpecError) as refused:
        parse_spec(spec)
    assert any(f"spec.sink.{block['type']}.{field}" in p and "100000" in p for p in refused.value.problems)


def test_read_batch_size_is_bounded_too() -> None:
    source = {"type": "postgresql", "postgresql": {"connectionString": "d", "table": "t", "readBatchSize": 1_000_000}}
    with pytest.raises(SpecError, match="readBatchSize"):
        parse_spec({"source": source, "sink": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}})


DEEP = b'{"a":' * 300 + b"1" + b"}" * 300  # parses (orjson: 1,024 levels) but cannot be encoded (254)


def refuse_unencodable(value: dict) -> str | None:
    return None if encodable(value) else "cannot encode the record as JSON"


async def test_a_record_nested_too_deep_reaches_the_errors_sink_as_raw_text() -> None:
    sink = MemorySink(reject=refuse_unencodable)
    errors = MemorySink(reject=refuse_unencodable)  # as every real sink: it must encode the envelope
    source = MemorySource([DEEP, b'{"ok": 1}'])
    await Pipeline(source=source, chain=chain_of(), sink=sink, errors_sink=errors, settings=FAST).run()
    assert sink.values == [{"ok": 1}]
    [envelope] = errors.values
    assert envelope["original_message"] == {"original_data": DEEP.decode()}
    assert source.committed == {0: 2}


async def test_without_errors_sink_a_too_deep_record_is_logged_as_text() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ns", "n"))
    logger = logging.getLogger("dataflow_processor.pipeline")
    logger.addHandler(handler)
    try:
        source = MemorySource([DEEP])
        await Pipeline(source=source, chain=chain_of(), sink=MemorySink(reject=refuse_unencodable), settings=FAST).run()
    finally:
        logger.removeHandler(handler)
    [line] = [json.loads(t) for t in stream.getvalue().splitlines() if "cannot go to an errors sink" in t]
    assert line["record"] == DEEP.decode()  # logged in full, as text
    assert source.committed == {0: 1}


def test_log_line_survives_an_extra_that_cannot_be_encoded() -> None:
    deep = orjson.loads(DEEP)
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", None, None)
    record.record = deep
    line = json.loads(JsonFormatter("ns", "n").format(record))
    assert line["msg"] == "failed" and line["record"] == "<not encodable as JSON: dict>"


def test_more_than_two_routers_are_refused() -> None:
    kafka = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}
    router = {"type": "router", "router": {"routes": [{"condition": "$.a", "sink": kafka}]}}
    parse_spec({"source": kafka, "sink": kafka, "transformations": [router, router]})
    with pytest.raises(SpecError, match="at most 2 router transformations"):
        parse_spec({"source": kafka, "sink": kafka, "transformations": [router, router, router]})


async def test_two_flattens_cannot_multiply_past_the_cap() -> None:
    """100 orders x 200 items = 20,000 outputs of one record, though each array is within the cap."""
    inner = list(range(200))
    over = {"n": 1, "orders": [{"items": inner} for _ in range(100)]}
    within = {"n": 2, "orders": [{"items": inner} for _ in range(MAX_FANOUT // 200)]}
    chain = chain_of(
        {"type": "flatten", "flatten": {"field": "orders"}}, {"type": "flatten", "flatten": {"field": "items"}}
    )
    source = MemorySource([over, within])
    sink, errors = MemorySink(), MemorySink()
    await Pipeline(source=source, chain=chain, sink=sink, errors_sink=errors, settings=FAST).run()
    assert len(sink.values) == MAX_FANOUT and {v["n"] for v in sink.values} == {2}
    [envelope] = errors.values  # once, not once per order
    assert "would hold 20000 elements" in envelope["error"]["message"]
    assert envelope["original_message"] == over
    assert source.committed == {0: 2}
