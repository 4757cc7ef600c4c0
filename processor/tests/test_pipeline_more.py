"""More pipeline behaviour: a stuck route holds the watermark back, revoked partitions, the registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dataflow_processor.connectors import registry
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec import parse_spec
from dfp_helpers import chain_of, wait_for

FAST = PipelineSettings(batch_size=2, linger_seconds=0.001, commit_interval=0.001, retry_initial=0.01, retry_max=0.02)
KAFKA = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}


async def test_a_stuck_route_holds_the_watermark_but_not_the_other_sinks() -> None:
    chain = chain_of({"type": "router", "router": {"routes": [{"condition": "$.slow", "sink": KAFKA}]}})
    source = MemorySource([{"id": 0}, {"id": 1, "slow": True}, {"id": 2}, {"id": 3}])
    main, slow = MemorySink(batch_size=1), MemorySink(transient_failures=10**6)
    pipeline = Pipeline(source=source, chain=chain, sink=main, route_sinks={0: slow}, settings=FAST)
    task = asyncio.create_task(pipeline.run())
    await wait_for(lambda: len(main.records) == 3)
    await asyncio.sleep(0.05)
    assert source.committed == {0: 1}  # offset 1 is unfinished: 2 and 3 are written but not committed
    slow.transient_failures = 0  # the route recovers
    await asyncio.wait_for(task, 5)
    assert [v["id"] for v in slow.values] == [1]
    assert source.committed == {0: 4}


async def test_revoked_partition_state_is_dropped() -> None:
    source = MemorySource(follow=True, partitions=2)
    revoked: list[Any] = []
    source.on_revoked = revoked.append  # type: ignore[method-assign]
    sink = MemorySink(transient_failures=10**6)
    pipeline = Pipeline(source=source, chain=chain_of(), sink=sink, settings=FAST)
    task = asyncio.create_task(pipeline.run())
    source.push([{"id": 0}, {"id": 1}])
    await wait_for(lambda: pipeline.tracker.in_flight() == 2)
    revoked[0]([1])  # partition 1 went to another consumer: its records will be re-read there
    assert pipeline.tracker.in_flight() == 1
    sink.transient_failures = 0
    await wait_for(lambda: len(sink.records) == 2)
    pipeline.stop()
    await asyncio.wait_for(task, 5)
    assert source.committed == {0: 1}  # nothing committed for the revoked partition


def test_registry_builds_connectors_from_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, Any, str]] = []

    def source_factory(config: Any, context: ConnectorContext) -> MemorySource:
        made.append(("source", config, context.role))
        return MemorySource()

    def sink_factory(config: Any, context: ConnectorContext) -> MemorySink:
        made.append(("sink", config, context.role))
        return MemorySink()

    monkeypatch.setattr(registry, "_sources", {})
    monkeypatch.setattr(registry, "_sinks", {})
    registry.register_source("kafka")(source_factory)
    registry.register_sink("postgresql")(sink_factory)
    registry.register_sink("kafka")(sink_factory)
    spec = parse_spec(
        {
            "source": KAFKA,
            "sink": {"type": "postgresql", "postgresql": {"connectionString": "postgres://x", "table": "t"}},
            "errors": KAFKA,
            "transformations": [{"type": "router", "router": {"routes": [{"condition": "$.a", "sink": KAFKA}]}}],
        }
    )
    pipeline = Pipeline.from_spec(spec, namespace="n", name="x")
    assert [(kind, role) for kind, _c, role in made] == [
        ("source", "source"),
        ("sink", "sink"),
        ("sink", "errors"),
        ("sink", "route:0"),
    ]
    assert pipeline.source_type == "kafka" and set(pipeline.routes) == {0}


def test_route_sinks_are_matched_to_routes_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two routers: each route's records go to the sink declared under that route."""
    topics: dict[int, str] = {}  # id(sink) → the topic of the spec it was made from

    def sink_factory(config: Any, context: ConnectorContext) -> MemorySink:
        sink = MemorySink()
        topics[id(sink)] = config.topic
        return sink

    def to(topic: str) -> dict[str, Any]:
        return {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": topic}}

    monkeypatch.setattr(registry, "_sources", {})
    monkeypatch.setattr(registry, "_sinks", {})
    registry.register_source("kafka")(lambda config, context: MemorySource())
    registry.register_sink("kafka")(sink_factory)
    spec = parse_spec(
        {
            "source": KAFKA,
            "sink": to("main"),
            "transformations": [
                {
                    "type": "router",
                    "router": {
                        "routes": [{"condition": "$.a", "sink": to("a")}, {"condition": "$.b", "sink": to("b")}]
                    },
                },
                {"type": "select", "select": {"fields": ["a", "b", "c"]}},
                {"type": "router", "router": {"routes": [{"condition": "$.c", "sink": to("c")}]}},
            ],
        }
    )
    pipeline = Pipeline.from_spec(spec, namespace="n", name="x")
    by_condition = {
        route.condition: topics[id(pipeline.routes[route.route_id].sink)] for route in pipeline.chain.routes
    }
    assert by_condition == {"$.a": "a", "$.b": "b", "$.c": "c"}
    assert {target.role: topics[id(target.sink)] for target in pipeline.routes.values()} == {
        "route:0": "a",
        "route:1": "b",
        "route:2": "c",
    }


def test_unknown_connector_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_sources", {})
    monkeypatch.setitem(registry.BUILTIN_MODULES, "trino", "dataflow_processor.connectors.not_there")
    spec = parse_spec(
        {
            "source": {
                "type": "trino",
                "trino": {"serverURL": "http://t", "catalog": "c", "schema": "s", "table": "t"},
            },
            "sink": KAFKA,
        }
    )
    with pytest.raises(registry.UnsupportedConnectorError, match="trino connector is not available"):
        registry.create_source(spec.source, ConnectorContext("n", "x", "source"))


async def test_stop_while_connecting_and_connect_failure_close_everything() -> None:
    class HangingSink(MemorySink):
        async def connect(self) -> None:
            await asyncio.sleep(3600)

    source, sink = MemorySource(), HangingSink()
    pipeline = Pipeline(source=source, chain=chain_of(), sink=sink, settings=FAST)
    task = asyncio.create_task(pipeline.run())
    await asyncio.sleep(0.02)
    pipeline.stop()
    await asyncio.wait_for(task, 2)
    assert source.closed and sink.closed

    class RefusingSink(MemorySink):
        async def connect(self) -> None:
            raise ConnectionRefusedError("no server")

    source, refusing = MemorySource(), RefusingSink()
    with pytest.raises(ConnectionRefusedError):
        await Pipeline(source=source, chain=chain_of(), sink=refusing, settings=FAST).run()
    assert source.closed and refusing.closed
