"""Prometheus metrics, named as the original's where it had one (original-behaviour.md §5).

Every series carries ``namespace`` and ``name`` (the DataFlow). Counters are incremented per batch,
never per record, to keep them off the hot path. Each :class:`Metrics` owns a registry, so tests
and ``preview`` can build several pipelines in one process.

Also kept here: the plain totals the status patcher reports (``processed``, ``errors``,
``last_processed``).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# 1 ms to 65.5 s, doubling: a sink write that waits on a slow database still lands in a bucket.
_LATENCY_BUCKETS = tuple(0.001 * 2**i for i in range(17))


class Metrics:
    def __init__(self, namespace: str, name: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.labels = {"namespace": namespace, "name": name}
        r = self.registry
        base = ["namespace", "name"]
        self.received = Counter(
            "dataflow_messages_received", "Records read from the source", [*base, "source_type"], registry=r
        )
        self.sent = Counter(
            "dataflow_messages_sent", "Records written to a sink", [*base, "sink_type", "route"], registry=r
        )
        self.processing = Histogram(
            "dataflow_processing_duration_seconds",
            "Time to run the transformation chain over one batch",
            base,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.status = Gauge("dataflow_status", "1 while the processor is running", [*base, "phase"], registry=r)
        self.connector_read = Counter(
            "dataflow_connector_messages_read",
            "Records read by a connector",
            [*base, "connector_type", "connector_name"],
            registry=r,
        )
        self.connector_written = Counter(
            "dataflow_connector_messages_written",
            "Records written by a connector",
            [*base, "connector_type", "connector_name", "route"],
            registry=r,
        )
        self.connector_errors = Counter(
            "dataflow_connector_errors",
            "Connector errors",
            [*base, "connector_type", "connector_name", "operation", "error_type"],
            registry=r,
        )
        self.connection_status = Gauge(
            "dataflow_connector_connection_status",
            "1 when connected",
            [*base, "connector_type", "connector_name"],
            registry=r,
        )
        t_labels = [*base, "transformer_type", "transformer_index"]
        self.t_exec = Counter("dataflow_transformer_executions", "Transformation batch runs", t_labels, registry=r)
        self.t_errors = Counter(
            "dataflow_transformer_errors", "Records a transformation failed on", [*t_labels, "error_type"], registry=r
        )
        self.t_duration = Histogram(
            "dataflow_transformer_duration_seconds",
            "Time per batch in a transformation",
            t_labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.t_in = Counter("dataflow_transformer_messages_in", "Records into a transformation", t_labels, registry=r)
        self.t_out = Counter(
            "dataflow_transformer_messages_out", "Records out of a transformation", t_labels, registry=r
        )
        self.operations = Counter(
            "dataflow_task_operations", "Pipeline operations by outcome", [*base, "operation", "status"], registry=r
        )
        self.stage_errors = Counter(
            "dataflow_task_stage_errors", "Per-record failures by stage", [*base, "stage", "error_type"], registry=r
        )
        self.stage_duration = Histogram(
            "dataflow_task_stage_duration_seconds",
            "Time per batch in a stage",
            [*base, "stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_size = Gauge(
            "dataflow_task_queue_size", "Batches waiting in a queue", [*base, "queue_type"], registry=r
        )
        self.active = Gauge(
            "dataflow_task_active_messages", "Source records read but not yet acknowledged", base, registry=r
        )
        self.processed_total = 0
        self.errors_total = 0
        self.last_processed: float | None = None

    def label(self, metric: Any, **labels: Any) -> Any:
        return metric.labels(**self.labels, **{k: str(v) for k, v in labels.items()})

    def written(self, sink_type: str, role: str, route: str, count: int) -> None:
        if count <= 0:
            return
        self.label(self.sent, sink_type=sink_type, route=route).inc(count)
        self.label(self.connector_written, connector_type=f"{sink_type}-sink", connector_name=role, route=route).inc(
            count
        )
        if role != "errors":
            self.processed_total += count
            self.last_processed = time.time()

    def failed(self, stage: str, error_type: str, count: int = 1) -> None:
        self.label(self.stage_errors, stage=stage, error_type=error_type).inc(count)
        self.errors_total += count

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
