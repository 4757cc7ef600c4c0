"""The batch pipeline: source → parse + transformation chain → route split → sink writers → acks.

::

    source.batches() ─► reader ─► chain.run(batch) ─┬─► queue ─► writer(main sink)   ─┐
        ▲     (register positions,                   ├─► queue ─► writer(route sink)  ─┤ release tokens
        │      count outputs per token)              └─► queue ─► writer(errors sink) ◄┘ (permanent failures)
        └──────────── committer: source.ack(per-partition watermark) ◄── WatermarkTracker

* **Batches** move between stages through bounded ``asyncio.Queue``\\ s (``queue_size`` batches
  each). When a queue is full the reader waits, so it stops asking the source for more: that is the
  backpressure. A writer gathers queued records into sink batches of the sink's ``batch_size``
  (default ``batch_size``) and flushes after ``flush_interval`` (default ``linger_seconds``), or
  as soon as the batch holds its share of ``max_pending_bytes`` (estimated JSON bytes,
  :func:`~dataflow_processor.records.payload_size`): large records make smaller batches instead of
  a batchSize of them exhausting memory.
* **At least once.** Every source batch is registered with the :class:`WatermarkTracker` in read
  order: the records of one partition share an :class:`AckRange`, which counts per record the
  outputs derived from it (0 → done at once, e.g. filtered out; N for a flatten fan-out; +1 for a
  failure headed to the errors sink). Each output written to its sink or to the errors sink is
  released once (in bulk per written chunk); the committer passes the per-partition watermark
  (next offset to read, never past an unfinished record) to ``source.ack``.
* **Failures.** Parse and transform failures, and records a sink rejects permanently, become
  errors envelopes (:mod:`.errors_envelope`) written to the errors sink. Without an errors sink
  the record is logged in full at ERROR level and counted (``errorCount``,
  ``dataflow_task_stage_errors_total``), then acknowledged — it is never dropped silently. A
  transient write failure (``TransientError``, connection, timeout, or anything unexpected) is
  retried with capped exponential backoff and jitter; the source does not advance meanwhile.
* **User CEL off the loop.** A chain with CEL conditions runs each batch in a worker thread (one
  hop per batch, not per record), so health endpoints, writers and commits go on while it runs;
  each CEL evaluation has a per-record deadline (``condition_timeout``) and a record that runs
  past it goes to the errors sink. Other chains cost a bounded time per byte and stay on the loop.
* **Stop.** ``stop()`` (SIGTERM) stops reading at once; what was read is flushed through the
  writers with a fresh deadline (``shutdown_timeout``), the watermark is committed, connectors are
  closed. A finite source that ends (tests, ``preview``) drains the same way without a deadline.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dataflow_processor.conditions import DEFAULT_TIMEOUT as DEFAULT_CONDITION_TIMEOUT
from dataflow_processor.connectors.base import (
    BatchPolicy,
    ConnectorContext,
    PermanentRecordError,
    Sink,
    Source,
)
from dataflow_processor.connectors.checkpoint import CheckpointStore
from dataflow_processor.errors_envelope import build_envelope, encodable, raw_text
from dataflow_processor.metrics import Metrics
from dataflow_processor.records import Partition, Record, payload_size
from dataflow_processor.spec.dataflow import DataFlowSpec
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec
from dataflow_processor.transforms.base import Transform
from dataflow_processor.transforms.chain import Failure, TransformChain
from dataflow_processor.watermark import WatermarkTracker, release_records, seal_batch

log = logging.getLogger("dataflow_processor.pipeline")

_FLUSH = object()
MIN_PENDING_BYTES = 2**20


@dataclass(frozen=True)
class PipelineSettings:
    """Tuning knobs; the CLI fills them from flags / environment (see README)."""

    batch_size: int = 500
    linger_seconds: float = 0.05
    queue_size: int = 8
    commit_interval: float = 1.0
    retry_initial: float = 0.2
    retry_max: float = 30.0
    shutdown_timeout: float = 25.0
    # JSON bytes that the sink batches being gathered may hold together, split evenly among the sinks
    # (main, routes, errors; at least 1 MiB each): a batch is written once its share is reached,
    # whatever the sink's batchSize says (docs: processor/README.md, Memory)
    max_pending_bytes: int = 32 * 2**20
    condition_timeout: float = DEFAULT_CONDITION_TIMEOUT  # seconds per record per CEL condition


@dataclass
class SinkTarget:
    """One output of the pipeline: the main sink, a route sink, or the errors sink."""

    role: str  # "sink", "errors", "route:<id>"
    route_label: str  # metrics ``route``: "default", the condition text, or "error"
    sink: Sink
    type_name: str
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(8))
    is_errors: bool = False


class Pipeline:
    """Moves records from one source through the chain into the sinks, at least once."""

    def __init__(
        self,
        *,
        source: Source,
        chain: TransformChain,
        sink: Sink,
        route_sinks: Mapping[int, Sink] | None = None,
        errors_sink: Sink | None = None,
        namespace: str = "default",
        name: str = "dataflow",
        settings: PipelineSettings | None = None,
        metrics: Metrics | None = None,
        source_type: str | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.namespace = namespace
        self.name = name
        self.source = source
        self.source_type = source_type or source.type_name or "unknown"
        self.chain = chain
        self.metrics = metrics or Metrics(namespace, name)
        self.tracker = WatermarkTracker()
        qsize = self.settings.queue_size
        self.main = SinkTarget("sink", "default", sink, sink.type_name or "unknown", asyncio.Queue(qsize))
        conditions = {route.route_id: route.condition for route in chain.routes}
        self.routes: dict[int, SinkTarget] = {
            route_id: SinkTarget(
                f"route:{route_id}",
                conditions.get(route_id, str(route_id)),
                route_sink,
                route_sink.type_name or "unknown",
                asyncio.Queue(qsize),
            )
            for route_id, route_sink in (route_sinks or {}).items()
        }
        missing = [r.route_id for r in chain.routes if r.route_id not in self.routes]
        if missing:
            raise ValueError(f"no sink for router route id(s) {missing}")
        self.errors: SinkTarget | None = None
        if errors_sink is not None:
            self.attach_errors_sink(errors_sink)
        self.ready = False
        self.stopping = False
        self._stop = asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._failure: BaseException | None = None
        self._chain_thread: ThreadPoolExecutor | None = None
        chain.stats = self._transform_stats
        source.on_revoked(self._revoked)

    # ------------------------------------------------------------------ construction from a spec

    @classmethod
    def from_spec(
        cls,
        spec: DataFlowSpec,
        *,
        namespace: str,
        name: str,
        settings: PipelineSettings | None = None,
        metrics: Metrics | None = None,
        make_source: Callable[[SourceSpec, ConnectorContext], Source] | None = None,
        make_sink: Callable[[SinkSpec, ConnectorContext], Sink] | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> Pipeline:
        """Build connectors (through the registry unless overridden) and the chain from a spec;
        ``checkpoints`` is where a polling source keeps its position (its context carries it)."""
        from dataflow_processor.connectors.registry import create_sink, create_source

        make_source = make_source or create_source
        make_sink = make_sink or create_sink
        condition_timeout = (settings or PipelineSettings()).condition_timeout
        chain = TransformChain.from_spec(spec.transformations, condition_timeout=condition_timeout)
        source = make_source(spec.source, ConnectorContext(namespace, name, "source", checkpoints=checkpoints))
        sink = make_sink(spec.sink, ConnectorContext(namespace, name, "sink"))
        errors = make_sink(spec.errors, ConnectorContext(namespace, name, "errors")) if spec.errors else None
        # a route's id is the chain's; the spec and the chain name the route by where it is declared
        route_ids = {(route.transform_index, route.route_index): route.route_id for route in chain.routes}
        route_sinks = {}
        for _path, t_index, r_index, _cond, route_spec in spec.route_sinks():
            route_id = route_ids[(t_index, r_index)]
            route_sinks[route_id] = make_sink(route_spec, ConnectorContext(namespace, name, f"route:{route_id}"))
        return cls(
            source=source,
            chain=chain,
            sink=sink,
            route_sinks=route_sinks,
            errors_sink=errors,
            namespace=namespace,
            name=name,
            settings=settings,
            metrics=metrics,
            source_type=spec.source.type,
        )

    # ------------------------------------------------------------------ public control

    def stop(self) -> None:
        """Stop reading; ``run`` then flushes what was read (fresh deadline), commits and returns."""
        if not self.stopping:
            log.info("stop requested: no more reads, flushing in-flight records")
        self.stopping = True
        self.ready = False
        self._stop.set()

    def attach_errors_sink(self, sink: Sink) -> None:
        """Set the errors sink after construction (``preview`` shows failures this way); before ``run``."""
        queue: asyncio.Queue[Any] = asyncio.Queue(self.settings.queue_size)
        self.errors = SinkTarget("errors", "error", sink, sink.type_name or "unknown", queue, is_errors=True)

    @property
    def targets(self) -> list[SinkTarget]:
        out = [self.main, *self.routes.values()]
        if self.errors is not None:
            out.append(self.errors)
        return out

    async def run(self) -> None:
        """Connect, stream until the source ends or ``stop()``, drain, commit, close. Raises on fatal errors."""
        if not await self._connect_unless_stopped():
            return
        if self.chain.runs_cel:
            self._chain_thread = ThreadPoolExecutor(1, thread_name_prefix="chain")
        self.metrics.phase("Running")
        self.ready = True
        writers = {t.role: asyncio.create_task(self._writer(t), name=f"writer-{t.role}") for t in self.targets}
        committer = asyncio.create_task(self._committer(), name="committer")
        reader = asyncio.create_task(self._read(), name="reader")
        for task in [*writers.values(), committer, reader]:
            task.add_done_callback(self._watch)
        try:
            await reader
        except asyncio.CancelledError:
            if self._failure is None:
                raise
        except Exception:
            pass  # recorded by _watch
        self.ready = False
        deadline_note = f" (deadline {self.settings.shutdown_timeout}s)" if self.stopping else ""
        log.info("draining in-flight records%s", deadline_note)
        drain = self._drain(writers)
        try:
            if self.stopping:
                await asyncio.wait_for(drain, self.settings.shutdown_timeout)
            else:
                await drain
        except TimeoutError:
            log.error("shutdown deadline passed with records still in flight; they will be re-read")
        except Exception:
            pass  # recorded by _watch
        committer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await committer
        await self._commit()
        await self._close()
        if self._chain_thread is not None:
            self._chain_thread.shutdown(wait=False)
        self.metrics.phase("Stopped")
        if self._failure is not None:
            raise self._failure

    # ------------------------------------------------------------------ stages

    async def _connect_unless_stopped(self) -> bool:
        """Connect everything; a ``stop()`` meanwhile abandons it. On failure or stop, close and report."""
        connecting = asyncio.create_task(self._connect(), name="connect")
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({connecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            log.info("stopped while connecting")
            await self._close()
            return False
        if connecting.exception() is not None:
            await self._close()
            raise connecting.exception()  # type: ignore[misc]
        return True

    async def _connect(self) -> None:
        try:
            await self.source.connect()
        except Exception as exc:
            self.metrics.source_connect_failed(self.source_type, exc)
            raise
        self.metrics.source_connected(self.source_type)
        for target in self.targets:
            try:
                await target.sink.connect()
            except Exception as exc:
                self.metrics.connect_failed(target, exc)
                raise
            self.metrics.connected(target)

    async def _read(self) -> None:
        policy = BatchPolicy(self.settings.batch_size, self.settings.linger_seconds)
        iterator = self.source.batches(policy).__aiter__()
        stop_waiter = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                next_batch = asyncio.ensure_future(iterator.__anext__())
                await asyncio.wait({next_batch, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
                if not next_batch.done():
                    next_batch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                        await next_batch
                    break
                try:
                    batch = next_batch.result()
                except StopAsyncIteration:
                    break
                if batch:
                    await self._dispatch(batch)
        finally:
            stop_waiter.cancel()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _dispatch(self, batch: list[Record]) -> None:
        """Register, transform, count outputs per token, and enqueue by destination."""
        metrics = self.metrics
        ranges = self.tracker.register_batch(batch)
        metrics.read(self.source_type, len(batch))
        started = time.perf_counter()
        if self._chain_thread is not None:
            # User CEL may take up to its deadline per record: run the batch in the chain's thread
            # so the loop keeps serving /livez, writers and commits meanwhile. The batch's ranges
            # are not sealed yet, so nothing commits past them while it runs.
            loop = asyncio.get_running_loop()
            outputs, failures = await loop.run_in_executor(self._chain_thread, self.chain.run, batch)
        else:
            outputs, failures = self.chain.run(batch)
        metrics.chain_ran(time.perf_counter() - started)
        seal_batch(ranges, outputs, [failure.record for failure in failures])
        self._commit_wanted.set()
        metrics.in_flight(self.tracker.in_flight())
        if failures:
            await self._failed_in_chain(failures)
        if not outputs:
            return
        if not self.routes:
            await self.main.queue.put(outputs)
            return
        groups: dict[int | None, list[Record]] = {}
        for output in outputs:
            groups.setdefault(output.route, []).append(output)
        for route_id, records in groups.items():
            target = self.main if route_id is None else self.routes[route_id]
            await target.queue.put(records)

    async def _failed_in_chain(self, failures: list[Failure]) -> None:
        envelopes = []
        for failure in failures:
            error_type = "invalid_data" if failure.stage == "parse" else "transformation_error"
            if failure.stage == "transform":
                self.metrics.transform_failed(failure.transform_type, failure.transform_index, error_type)
            envelope = self._failed(
                failure.record,
                failure.error,
                stage=failure.stage,
                error_type=error_type,
                target=self.main,
                transform_index=failure.transform_index,
                transform_type=failure.transform_type,
            )
            if envelope is not None:
                envelopes.append(envelope)
        if envelopes and self.errors is not None:
            await self.errors.queue.put(envelopes)

    def _failed(
        self,
        record: Record,
        message: str,
        *,
        stage: str,
        error_type: str,
        target: SinkTarget,
        transform_index: int | None = None,
        transform_type: str | None = None,
    ) -> Record | None:
        """Count a failed record; return its envelope for the errors sink, or log it in full and ack."""
        self.metrics.failed(stage, error_type)
        if self.errors is None or target.is_errors:
            payload: Any = (
                record.value
                if record.value is not None
                else (record.raw.decode("utf-8", errors="replace") if record.raw is not None else None)
            )
            if not encodable(payload):  # nested too deep for a JSON log line: log its text instead
                payload = raw_text(record)
            log.error(
                "record failed at stage %s and cannot go to an errors sink: %s",
                stage,
                message,
                extra={
                    "record": payload,
                    "metadata": dict(record.metadata),
                    "stage": stage,
                    "position": record.position.as_dict() if record.position else None,
                    "transformation_index": transform_index,
                    "transformation_type": transform_type,
                    "sink": target.role,
                    "error_type": error_type,
                },
            )
            release_records((record,))
            self._commit_wanted.set()
            return None
        return build_envelope(
            record,
            message=message,
            stage=stage,
            namespace=self.namespace,
            name=self.name,
            original_sink=self.main.type_name,
            sink=target.route_label if target.role != "sink" else "sink",
            transform_index=transform_index,
            transform_type=transform_type,
        )

    @property
    def pending_bytes_cap(self) -> int:
        """Each sink's share of ``max_pending_bytes``."""
        return max(MIN_PENDING_BYTES, self.settings.max_pending_bytes // len(self.targets))

    async def _writer(self, target: SinkTarget) -> None:
        batch_size = target.sink.batch_size or self.settings.batch_size
        linger = target.sink.flush_interval if target.sink.flush_interval is not None else self.settings.linger_seconds
        max_bytes = self.pending_bytes_cap
        pending: list[Record] = []
        sizes: list[int] = []  # payload_size of each pending record
        pending_bytes = 0
        deadline = 0.0
        queue = target.queue
        while True:
            if pending:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    item: Any = _FLUSH
                else:
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        item = _FLUSH
            else:
                item = await queue.get()
            closed = item is None
            if not closed and item is not _FLUSH:
                if not pending:
                    deadline = time.monotonic() + linger
                pending.extend(item)
                added = [r.size if r.size > 0 else payload_size(r) for r in item]
                sizes.extend(added)
                pending_bytes += sum(added)
            while len(pending) >= batch_size or pending_bytes >= max_bytes:
                count = min(batch_size, len(pending))
                if pending_bytes >= max_bytes:  # the fewest leading records that reach the cap
                    count = min(count, bisect.bisect_left(list(itertools.accumulate(sizes[:count])), max_bytes) + 1)
                chunk, pending = pending[:count], pending[count:]
                pending_bytes -= sum(sizes[:count])
                del sizes[:count]
                await self._write(target, chunk)
                if pending:
                    deadline = time.monotonic() + linger
            if pending and (closed or item is _FLUSH):
                chunk, pending = pending, []
                sizes.clear()
                pending_bytes = 0
                await self._write(target, chunk)
            if closed:
                return

    async def _write(self, target: SinkTarget, batch: list[Record]) -> None:
        """Write one batch until it is in: retry transient errors, divert permanent failures."""
        metrics = self.metrics
        attempt = 0
        while batch:
            started = time.perf_counter()
            try:
                result = await target.sink.write(batch)
            except asyncio.CancelledError:
                raise
            except PermanentRecordError as exc:
                if not 0 <= exc.index < len(batch):
                    raise ValueError(
                        f"{target.role} sink reported record index {exc.index} outside a batch of {len(batch)}"
                    ) from exc
                bad = batch.pop(exc.index)
                await self._divert(target, [(bad, exc.message, "invalid_data")])
                continue
            except Exception as exc:
                attempt += 1
                error_type = metrics.write_failed(target, exc)
                delay = min(self.settings.retry_max, self.settings.retry_initial * 2 ** (attempt - 1))
                delay *= random.uniform(0.8, 1.2)
                log.warning(
                    "write to %s sink failed (%s, attempt %d), retrying in %.2fs: %s",
                    target.role,
                    error_type,
                    attempt,
                    delay,
                    exc,
                    exc_info=error_type == "unknown",
                    extra={"sink": target.role},
                )
                await asyncio.sleep(delay)
                continue
            metrics.batch_written(target, time.perf_counter() - started)
            written = batch
            if result.failures:
                failed_index = {f.index for f in result.failures}
                await self._divert(target, [(batch[f.index], f.error, f.error_type) for f in result.failures])
                written = [r for i, r in enumerate(batch) if i not in failed_index]
            metrics.written(target, len(written))
            release_records(written)
            self._commit_wanted.set()
            return

    async def _divert(self, target: SinkTarget, failed: list[tuple[Record, str, str]]) -> None:
        envelopes = []
        for record, message, error_type in failed:
            stage = "error_sink_write" if target.is_errors else "write"
            envelope = self._failed(record, message, stage=stage, error_type=error_type, target=target)
            if envelope is not None:
                envelopes.append(envelope)
        if envelopes and self.errors is not None:
            await self.errors.queue.put(envelopes)

    async def _drain(self, writers: dict[str, asyncio.Task[None]]) -> None:
        """Close the main and route queues, wait for their writers, then the errors writer."""
        for target in [self.main, *self.routes.values()]:
            if not writers[target.role].done():  # a dead writer would never take the sentinel
                await target.queue.put(None)
        await asyncio.gather(*(writers[t.role] for t in [self.main, *self.routes.values()]))
        if self.errors is not None:
            if not writers["errors"].done():
                await self.errors.queue.put(None)
            await writers["errors"]

    async def _committer(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._commit()
            await asyncio.sleep(self.settings.commit_interval)

    async def _commit(self) -> None:
        marks = self.tracker.uncommitted()
        metrics = self.metrics
        metrics.in_flight(self.tracker.in_flight())
        for target in self.targets:
            metrics.queued(target, target.queue.qsize())
        if not marks:
            return
        try:
            await self.source.ack(marks)
        except Exception as exc:
            self.metrics.commit_failed(self.source_type, exc)
            log.warning("committing source positions failed, will retry: %s", exc)
            return
        self.tracker.mark_committed(marks)

    async def _close(self) -> None:
        connectors: list[tuple[str, Source | Sink]] = [("source", self.source)]
        connectors += [(t.role, t.sink) for t in self.targets]
        for role, connector in connectors:
            try:
                await connector.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", role, exc)

    # ------------------------------------------------------------------ bookkeeping

    def _watch(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._failure is None:
            log.error("pipeline task %s failed: %s", task.get_name(), exc, exc_info=exc)
            self._failure = exc
            self._stop.set()
            self.stopping = True

    def _revoked(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            self.tracker.forget(partition)

    def _transform_stats(self, transform: Transform, size_in: int, size_out: int, seconds: float, failed: int) -> None:
        self.metrics.transformed(transform.type_name, transform.index, size_in, size_out, seconds)
