"""The exposition is an interface: dashboards and alerts read these names and labels.

One pipeline run that touches every series (a route, the errors sink, a parse failure, a transform
failure, a permanently rejected record, a transient write failure, a failed commit) and a failed
connect; every sample's name and labels must be exactly these, and every counter and gauge value
too (histogram sums and buckets depend on timing; their sample counts where they do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.metrics import Metrics
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.records import Partition
from dfp_helpers import chain_of

SETTINGS = PipelineSettings(
    batch_size=8, linger_seconds=0.001, commit_interval=0.001, retry_initial=0.001, retry_max=0.01, queue_size=2
)
KAFKA = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}
DF = (("name", "orders"), ("namespace", "shop"))

Sample = tuple[str, tuple[tuple[str, str], ...]]


class FirstCommitFails(MemorySource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commit_failures = 1

    async def ack(self, watermarks: Mapping[Partition, int]) -> None:
        if self.commit_failures:
            self.commit_failures -= 1
            raise ConnectionError("broker gone")
        await super().ack(watermarks)


class ConnectFails(MemorySink):
    async def connect(self) -> None:
        raise TimeoutError("no answer")


def samples(metrics: Metrics) -> dict[Sample, float | None]:
    """Every sample but ``_created``; ``None`` for values that depend on timing."""
    out: dict[Sample, float | None] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            timed = family.type == "histogram" and not sample.name.endswith("_count")
            out[(sample.name, tuple(sorted(sample.labels.items())))] = None if timed else sample.value
    return out


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*DF, *extra.items())))


async def test_one_run_exports_exactly_these_series() -> None:
    chain = chain_of(
        {"type": "timestamp", "timestamp": {"fieldName": "meta.at"}},
        {"type": "router", "router": {"routes": [{"condition": "$.kind == 'a'", "sink": KAFKA}]}},
    )
    source = FirstCommitFails([{"id": 1, "kind": "a"}, b"{broken", {"id": 3, "meta": [1]}, {"id": 4}, {"id": 5}])
    main = MemorySink(transient_failures=1, reject=lambda v: "constraint" if v["id"] == 4 else None, batch_size=2)
    route, errors = MemorySink(), MemorySink(batch_size=2)  # batch sizes that make the writes deterministic
    p = Pipeline(
        source=source,
        chain=chain,
        sink=main,
        route_sinks={0: route},
        errors_sink=errors,
        namespace="shop",
        name="orders",
        settings=SETTINGS,
    )
    await p.run()
    assert [v["id"] for v in main.values] == [5]
    assert [v["id"] for v in route.values] == [1]
    assert len(errors.values) == 3
    found = samples(p.metrics)
    timed = {key for key, value in found.items() if value is None}
    counted = {key: value for key, value in found.items() if value is not None}
    route_label = "$.kind == 'a'"
    t0 = {"transformer_index": "0", "transformer_type": "timestamp"}
    t1 = {"transformer_index": "1", "transformer_type": "router"}
    expected_counted: dict[Sample, float] = {
        ("dataflow_messages_received_total", labels(source_type="memory")): 5.0,
        ("dataflow_messages_sent_total", labels(route="default", sink_type="memory")): 1.0,
        ("dataflow_messages_sent_total", labels(route=route_label, sink_type="memory")): 1.0,
        ("dataflow_messages_sent_total", labels(route="error", sink_type="memory")): 3.0,
        ("dataflow_processing_duration_seconds_count", labels()): 1.0,
        ("dataflow_status", labels(phase="Running")): 0.0,
        ("dataflow_status", labels(phase="Stopped")): 1.0,
        (
            "dataflow_connector_messages_read_total",
            labels(connector_name="source", connector_type="memory-source"),
        ): 5.0,
        (
            "dataflow_connector_messages_written_total",
            labels(connector_name="sink", connector_type="memory-sink", route="default"),
        ): 1.0,
        (
            "dataflow_connector_messages_written_total",
            labels(connector_name="route:0", connector_type="memory-sink", route=route_label),
        ): 1.0,
        (
            "dataflow_connector_messages_written_total",
            labels(connector_name="errors", connector_type="memory-sink", route="error"),
        ): 3.0,
        (
            "dataflow_connector_errors_total",
            labels(connector_name="sink", connector_type="memory-sink", error_type="transient", operation="write"),
        ): 1.0,
        (
            "dataflow_connector_errors_total",
            labels(
                connector_name="source",
                connector_type="memory-source",
                error_type="connection_error",
                operation="commit",
            ),
        ): 1.0,
        **{
            ("dataflow_connector_connection_status", labels(connector_name=role, connector_type=kind)): 1.0
            for role, kind in [
                ("source", "memory-source"),
                ("sink", "memory-sink"),
                ("route:0", "memory-sink"),
                ("errors", "memory-sink"),
            ]
        },
        ("dataflow_transformer_executions_total", labels(**t0)): 1.0,
        ("dataflow_transformer_executions_total", labels(**t1)): 1.0,
        ("dataflow_transformer_errors_total", labels(**t0, error_type="transformation_error")): 1.0,
        ("dataflow_transformer_duration_seconds_count", labels(**t0)): 1.0,
        ("dataflow_transformer_duration_seconds_count", labels(**t1)): 1.0,
        ("dataflow_transformer_messages_in_total", labels(**t0)): 4.0,
        ("dataflow_transformer_messages_out_total", labels(**t0)): 3.0,
        ("dataflow_transformer_messages_in_total", labels(**t1)): 3.0,
        ("dataflow_transformer_messages_out_total", labels(**t1)): 3.0,
        ("dataflow_task_operations_total", labels(operation="sink_write", status="error")): 1.0,
        ("dataflow_task_operations_total", labels(operation="sink_write", status="success")): 2.0,
        ("dataflow_task_operations_total", labels(operation="error_sink_write", status="success")): 2.0,
        ("dataflow_task_stage_errors_total", labels(error_type="invalid_data", stage="parse")): 1.0,
        ("dataflow_task_stage_errors_total", labels(error_type="transformation_error", stage="transform")): 1.0,
        ("dataflow_task_stage_errors_total", labels(error_type="constraint_violation", stage="write")): 1.0,
        ("dataflow_task_stage_duration_seconds_count", labels(stage="sink_write")): 2.0,
        ("dataflow_task_stage_duration_seconds_count", labels(stage="error_sink_write")): 2.0,
        **{("dataflow_task_queue_size", labels(queue_type=q)): 0.0 for q in ("default", route_label, "error")},
        ("dataflow_task_active_messages", labels()): 0.0,
    }
    assert counted == expected_counted
    histograms = {
        ("dataflow_processing_duration_seconds", ()),
        ("dataflow_transformer_duration_seconds", tuple(t0.items())),
        ("dataflow_transformer_duration_seconds", tuple(t1.items())),
        ("dataflow_task_stage_duration_seconds", (("stage", "sink_write"),)),
        ("dataflow_task_stage_duration_seconds", (("stage", "error_sink_write"),)),
    }
    expected_timed = set()
    for name, extra in histograms:
        expected_timed.add((f"{name}_sum", labels(**dict(extra))))
        buckets = [*(f"{0.001 * 2**i}" for i in range(17)), "+Inf"]  # 1 ms to 65.536 s
        expected_timed.update((f"{name}_bucket", labels(**dict(extra), le=le)) for le in buckets)
    assert timed == expected_timed


async def test_a_failed_connect_is_counted_by_connector() -> None:
    p = Pipeline(
        source=MemorySource([{"id": 1}]),
        chain=chain_of(),
        sink=ConnectFails(),
        namespace="shop",
        name="orders",
        settings=SETTINGS,
    )
    with pytest.raises(TimeoutError):
        await p.run()
    assert samples(p.metrics) == {
        ("dataflow_connector_connection_status", labels(connector_name="source", connector_type="memory-source")): 1.0,
        (
            "dataflow_connector_errors_total",
            labels(connector_name="sink", connector_type="memory-sink", error_type="timeout", operation="connect"),
        ): 1.0,
    }
