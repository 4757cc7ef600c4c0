"""Pipeline tests with the in-process connectors: each asserts exactly which records went where
and which source positions were acknowledged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.transforms.chain import TransformChain
from dfp_helpers import chain_of

FAST = PipelineSettings(
    batch_size=4, linger_seconds=0.001, commit_interval=0.001, retry_initial=0.001, retry_max=0.01, queue_size=2
)
KAFKA = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}


def pipeline(
    source: MemorySource,
    chain: TransformChain | None = None,
    *,
    sink: MemorySink | None = None,
    errors: MemorySink | None = None,
    routes: dict[int, MemorySink] | None = None,
    settings: PipelineSettings = FAST,
) -> Pipeline:
    return Pipeline(
        source=source,
        chain=chain or chain_of(),
        sink=sink or MemorySink(),
        route_sinks=routes,
        errors_sink=errors,
        namespace="shop",
        name="orders",
        settings=settings,
    )


async def test_records_flow_and_every_position_is_acked() -> None:
    source = MemorySource([{"id": i} for i in range(10)], partitions=3)
    sink = MemorySink()
    await pipeline(source, sink=sink).run()
    assert sorted(v["id"] for v in sink.values) == list(range(10))
    assert source.committed == {0: 4, 1: 3, 2: 3}


async def test_fan_out_acks_only_after_every_child_is_written() -> None:
    """A flatten parent is acked when its last child is written, not its first."""
    source = MemorySource([{"o": 1, "items": [{"n": 1}, {"n": 2}, {"n": 3}]}, {"o": 2, "items": [{"n": 4}]}])
    acked_when_written: list[tuple[int, dict]] = []
    sink = MemorySink(batch_size=1)
    sink.on_write = lambda recs: acked_when_written.append((len(sink.records), dict(source.committed)))
    p = pipeline(source, chain_of({"type": "flatten", "flatten": {"field": "items"}}), sink=sink)
    await p.run()
    assert [v["n"] for v in sink.values] == [1, 2, 3, 4]
    assert source.committed == {0: 2}
    # while only 1 or 2 of the 3 children were written, offset 0 was not committed
    for written, committed in acked_when_written:
        if written < 3:
            assert committed.get(0, 0) == 0


async def test_filtered_out_records_are_acked_at_once() -> None:
    source = MemorySource([{"keep": False}] * 5)
    sink = MemorySink()
    await pipeline(source, chain_of({"type": "filter", "filter": {"condition": "$.keep"}}), sink=sink).run()
    assert sink.records == []
    assert source.committed == {0: 5}


async def test_routes_split_records_by_first_matching_condition() -> None:
    chain = chain_of(
        {
            "type": "router",
            "router": {
                "routes": [{"condition": "$.kind == 'a'", "sink": KAFKA}, {"condition": "$.vip", "sink": KAFKA}]
            },
        },
        {"type": "remove", "remove": {"fields": ["vip"]}},
    )
    source = MemorySource(
        [
            {"id": 1, "kind": "a", "vip": True},
            {"id": 2, "kind": "b", "vip": True},
            {"id": 3, "kind": "c"},
            {"id": 4, "kind": "a"},
        ]
    )
    main, route_a, route_vip = MemorySink(), MemorySink(), MemorySink()
    await pipeline(source, chain, sink=main, routes={0: route_a, 1: route_vip}).run()
    assert [v["id"] for v in route_a.values] == [1, 4]
    assert [v["id"] for v in route_vip.values] == [2]
    assert [v["id"] for v in main.values] == [3]
    assert all("vip" not in v for v in route_a.values + route_vip.values)  # later transforms still apply
    assert route_a.records[0].metadata["routed_condition"] == "$.kind == 'a'"
    assert source.committed == {0: 4}


async def test_poison_records_amid_good_ones_go_to_the_errors_sink_with_an_envelope() -> None:
    chain = chain_of({"type": "timestamp", "timestamp": {"fieldName": "meta.at"}})
    source = MemorySource([{"id": 1}, b"{broken", {"id": 3, "meta": [1]}, b'"just a string"', {"id": 5}], partitions=1)
    sink, errors = MemorySink(), MemorySink()
    await pipeline(source, chain, sink=sink, errors=errors).run()
    assert [v["id"] for v in sink.values] == [1, 5]
    envelopes = sorted(errors.values, key=lambda e: e["error"]["position"]["offset"])
    assert [e["error"]["position"]["offset"] for e in envelopes] == [1, 2, 3]
    parse_error, transform_error, not_object = envelopes
    assert parse_error["error"]["stage"] == "parse"
    assert parse_error["original_message"] == {"original_data": "{broken"}
    assert parse_error["error"]["dataflow"] == {"namespace": "shop", "name": "orders"}
    assert transform_error["error"]["stage"] == "transform"
    assert transform_error["error"]["transformation"] == {"index": 0, "type": "timestamp"}
    assert transform_error["original_message"] == {"id": 3, "meta": [1]}
    assert not_object["original_message"] == {"original_data": '"just a string"'}
    assert {"message", "timestamp", "original_sink", "metadata"} <= set(parse_error["error"])
    assert all(r.metadata["is_error_message"] is True for r in errors.records)
    assert source.committed == {0: 5}


async def test_permanent_write_failure_diverts_only_that_record() -> None:
    source = MemorySource([{"id": i} for i in range(6)])
    sink = MemorySink(batch_size=6, reject=lambda v: "duplicate key" if v["id"] in (2, 4) else None)
    errors = MemorySink()
    await pipeline(source, sink=sink, errors=errors).run()
    assert [v["id"] for v in sink.values] == [0, 1, 3, 5]
    assert [(e["original_message"]["id"], e["error"]["stage"], e["error"]["message"]) for e in errors.values] == [
        (2, "write", "duplicate key"),
        (4, "write", "duplicate key"),
    ]
    assert source.committed == {0: 6}


async def test_permanent_record_error_raised_retries_the_rest() -> None:
    source = MemorySource([{"id": i} for i in range(5)])
    sink = MemorySink(batch_size=5, reject=lambda v: "bad value" if v["id"] == 1 else None, reject_raises=True)
    errors = MemorySink()
    await pipeline(source, sink=sink, errors=errors).run()
    assert [v["id"] for v in sink.values] == [0, 2, 3, 4]
    assert [e["original_message"]["id"] for e in errors.values] == [1]


async def test_transient_failures_retry_without_advancing_the_source() -> None:
    source = MemorySource([{"id": i} for i in range(3)])
    commits_during_failure: list[dict] = []
    sink = MemorySink(transient_failures=3)
    original_write = sink.write

    async def spying_write(batch: list) -> Any:
        if sink.transient_failures:
            commits_during_failure.append(dict(source.committed))
        return await original_write(batch)

    sink.write = spying_write  # type: ignore[method-assign]
    p = pipeline(source, sink=sink)
    await p.run()
    assert [v["id"] for v in sink.values] == [0, 1, 2]
    assert sink.write_calls == 4
    assert all(c == {} for c in commits_during_failure)
    assert source.committed == {0: 3}
    assert p.metrics.processed_total == 3


async def test_without_errors_sink_failures_are_logged_in_full_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    source = MemorySource([{"id": 1}, b"oops", {"id": 3}])
    sink = MemorySink(reject=lambda v: "constraint" if v["id"] == 3 else None)
    p = pipeline(source, sink=sink)
    with caplog.at_level(logging.ERROR, logger="dataflow_processor.pipeline"):
        await p.run()
    assert sink.values == [{"id": 1}]
    logged = [(r.stage, r.record) for r in caplog.records if hasattr(r, "record")]  # type: ignore[attr-defined]
    assert logged == [("parse", "oops"), ("write", {"id": 3})]
    assert p.metrics.errors_total == 2
    assert source.committed == {0: 3}


async def test_errors_sink_failures_are_logged_not_looped(caplog: pytest.LogCaptureFixture) -> None:
    source = MemorySource([b"bad"])
    errors = MemorySink(reject=lambda v: "errors sink refuses too")
    p = pipeline(source, errors=errors)
    with caplog.at_level(logging.ERROR, logger="dataflow_processor.pipeline"):
        await p.run()
    assert errors.records == []
    assert any(getattr(r, "stage", None) == "error_sink_write" for r in caplog.records)
    assert source.committed == {0: 1}


async def test_backpressure_pauses_the_source() -> None:
    source = MemorySource([{"id": i} for i in range(200)], follow=False)
    sink = MemorySink(delay=0.01, batch_size=4)
    settings = PipelineSettings(batch_size=4, linger_seconds=0.001, queue_size=1, commit_interval=0.001)
    p = pipeline(source, sink=sink, settings=settings)
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0.05)
    # with one slow writer and a 1-batch queue, the reader cannot be far ahead of the sink
    assert source.read_count - len(sink.records) <= 4 * 4
    p.stop()
    await task
    assert len(sink.records) == source.read_count  # everything read was flushed
    assert source.committed == {0: source.read_count}


async def test_stop_flushes_in_flight_and_commits() -> None:
    source = MemorySource(follow=True)
    sink = MemorySink(batch_size=1000)
    settings = PipelineSettings(batch_size=10, linger_seconds=0.001, commit_interval=10, shutdown_timeout=5)
    sink.flush_interval = 30  # would not flush by itself during the test
    p = pipeline(source, sink=sink, settings=settings)
    task = asyncio.create_task(p.run())
    source.push({"id": i} for i in range(25))
    await asyncio.sleep(0.05)
    assert sink.records == []
    p.stop()
    await asyncio.wait_for(task, 5)
    assert [v["id"] for v in sink.values] == list(range(25))
    assert source.committed == {0: 25}
    assert source.closed and sink.closed


async def test_metrics_use_the_original_names() -> None:
    source = MemorySource([{"id": 1}, b"x"])
    p = pipeline(source, chain_of({"type": "select", "select": {"fields": ["id"]}}), errors=MemorySink())
    await p.run()
    text = p.metrics.exposition().decode()
    assert 'dataflow_messages_received_total{name="orders",namespace="shop",source_type="memory"} 2.0' in text
    assert 'dataflow_messages_sent_total{name="orders",namespace="shop",route="default",sink_type="memory"} 1.0' in text
    assert 'route="error"' in text
    assert (
        'dataflow_transformer_messages_in_total{name="orders",namespace="shop",transformer_index="0",'
        'transformer_type="select"} 1.0' in text
    )
    assert (p.metrics.processed_total, p.metrics.errors_total) == (1, 1)
