"""Prometheus metrics; names and labels stay those dashboards of the Go project use (docs/compatibility.md).

Every series carries ``namespace`` and ``name`` (the DataFlow). Counters are incremented per batch,
never per record, to keep them off the hot path. Each :class:`Metrics` owns a registry, so tests
and ``preview`` can build several pipelines in one process.

The pipeline speaks in verbs (``read``, ``written``, ``write_failed``, ``transformed``…) about its
source and its outputs (:class:`Output`); the label names and values the dashboards read are made
here and nowhere else (``tests/test_metrics_exposition.py`` pins them).

Also kept here: the plain totals the status patcher reports (``processed``, ``errors``,
``last_processed``).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dataflow_processor.connectors.base import classify_error

# 1 ms to 65.5 s, doubling: a sink write that waits on a slow database still lands in a bucket.
_LATENCY_BUCKETS = tuple(0.001 * 2**i for i in range(17))


class Output(Protocol):
    """One output of the pipeline as the metrics label it (the pipeline's ``SinkTarget``)."""

    @property
    def role(self) -> str:
        """``connector_name``: "sink", "errors" or "route:<id>"."""

    @property
    def route_label(self) -> str:
        """``route`` and ``queue_type``: "default", the route's condition text, or "error"."""

    @property
    def type_name(self) -> str:
        """The connector type; ``connector_type`` is ``<type>-sink``."""

    @property
    def is_errors(self) -> bool:
        """The errors sink: its writes are the ``error_sink_write`` operation, not counted as processed."""


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
        self._transform_series: dict[int, tuple[Any, Any, Any, Any]] = {}

    def label(self, metric: Any, **labels: Any) -> Any:
        return metric.labels(**self.labels, **{k: str(v) for k, v in labels.items()})

    # ------------------------------------------------------------------ the source

    def source_connected(self, source_type: str) -> None:
        self.label(self.connection_status, connector_type=f"{source_type}-source", connector_name="source").set(1)

    def source_connect_failed(self, source_type: str, exc: BaseException) -> None:
        self._source_error(source_type, "connect", exc)

    def read(self, source_type: str, count: int) -> None:
        """A batch of ``count`` records came from the source."""
        self.label(self.received, source_type=source_type).inc(count)
        self.label(self.connector_read, connector_type=f"{source_type}-source", connector_name="source").inc(count)

    def commit_failed(self, source_type: str, exc: BaseException) -> None:
        self._source_error(source_type, "commit", exc)

    def _source_error(self, source_type: str, operation: str, exc: BaseException) -> None:
        self.label(
            self.connector_errors,
            connector_type=f"{source_type}-source",
            connector_name="source",
            operation=operation,
            error_type=classify_error(exc),
        ).inc()

    # ------------------------------------------------------------------ the chain

    def chain_ran(self, seconds: float) -> None:
        """The transformation chain ran over one batch."""
        self.label(self.processing).observe(seconds)

    def transformed(self, transform_type: str, index: int, size_in: int, size_out: int, seconds: float) -> None:
        """One transformation ran over one batch (its labelled series are looked up once per index)."""
        children = self._transform_series.get(index)
        if children is None:
            labels = {"transformer_type": transform_type, "transformer_index": index}
            children = (
                self.label(self.t_exec, **labels),
                self.label(self.t_in, **labels),
                self.label(self.t_out, **labels),
                self.label(self.t_duration, **labels),
            )
            self._transform_series[index] = children
        executions, into, out, duration = children
        executions.inc()
        into.inc(size_in)
        out.inc(size_out)
        duration.observe(seconds)

    def transform_failed(self, transform_type: str | None, index: int | None, error_type: str) -> None:
        """A transformation failed on one record (the record's failure is counted by :meth:`failed`)."""
        self.label(self.t_errors, transformer_type=transform_type, transformer_index=index, error_type=error_type).inc()

    # ------------------------------------------------------------------ the outputs

    def connected(self, output: Output) -> None:
        self.label(self.connection_status, connector_type=f"{output.type_name}-sink", connector_name=output.role).set(1)

    def connect_failed(self, output: Output, exc: BaseException) -> None:
        self._sink_error(output, "connect", exc)

    def write_failed(self, output: Output, exc: BaseException) -> str:
        """A write of a batch failed and will be retried; returns the ``error_type`` it was counted as."""
        error_type = self._sink_error(output, "write", exc)
        self.label(self.operations, operation=self._operation(output), status="error").inc()
        return error_type

    def batch_written(self, output: Output, seconds: float) -> None:
        """A write call returned (some of its records may still have been rejected, see :meth:`written`)."""
        operation = self._operation(output)
        self.label(self.stage_duration, stage=operation).observe(seconds)
        self.label(self.operations, operation=operation, status="success").inc()

    def written(self, output: Output, count: int) -> None:
        """``count`` records are in ``output``'s sink."""
        if count <= 0:
            return
        route = output.route_label
        self.label(self.sent, sink_type=output.type_name, route=route).inc(count)
        self.label(
            self.connector_written, connector_type=f"{output.type_name}-sink", connector_name=output.role, route=route
        ).inc(count)
        if output.role != "errors":
            self.processed_total += count
            self.last_processed = time.time()

    def queued(self, output: Output, batches: int) -> None:
        """``batches`` batches wait in the queue in front of ``output``'s writer."""
        self.label(self.queue_size, queue_type=output.route_label).set(batches)

    def _sink_error(self, output: Output, operation: str, exc: BaseException) -> str:
        error_type = classify_error(exc)
        self.label(
            self.connector_errors,
            connector_type=f"{output.type_name}-sink",
            connector_name=output.role,
            operation=operation,
            error_type=error_type,
        ).inc()
        return error_type

    @staticmethod
    def _operation(output: Output) -> str:
        return "error_sink_write" if output.is_errors else "sink_write"

    # ------------------------------------------------------------------ the whole

    def failed(self, stage: str, error_type: str, count: int = 1) -> None:
        """``count`` records failed at ``stage`` (they go to the errors sink, or are logged and acked)."""
        self.label(self.stage_errors, stage=stage, error_type=error_type).inc(count)
        self.errors_total += count

    def in_flight(self, count: int) -> None:
        """``count`` source records are read and not yet acknowledged."""
        self.label(self.active).set(count)

    def phase(self, phase: str) -> None:
        """The processor is in ``phase`` ("Running" or "Stopped") and in no other."""
        for value in ("Running", "Stopped"):
            self.label(self.status, phase=value).set(1 if value == phase else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
