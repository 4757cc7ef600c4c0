"""Command line: run a DataFlow, validate a spec, or preview a transformation chain.

``dataflow-processor --spec-path P --namespace NS --name N``  run (also ``run`` as a subcommand)
``dataflow-processor validate FILE...``                       admission rules (CRD schema + CEL policy) and more
``dataflow-processor preview --spec-path FILE < in.jsonl``    what each sink would receive

Run reads the spec from the ConfigMap file, merges the Secret mounted at ``--secrets-path``
(see ``spec.secrets``), serves ``/metrics``, ``/livez``, ``/readyz``, reports status counters, and
on SIGTERM/SIGINT stops reading, flushes with a fresh deadline, commits and exits 0. Start-up
errors (invalid spec, unknown connector, connection refused) exit 1; so does a fatal pipeline error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from dataflow_processor import __version__
from dataflow_processor.admission import validate_spec
from dataflow_processor.connectors.base import ConnectorContext, Sink
from dataflow_processor.connectors.checkpoint import CHECKPOINT_DIR_ENV, open_checkpoint_store
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.health import HealthServer
from dataflow_processor.logging_json import configure_logging
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec
from dataflow_processor.spec.loader import SpecError, load_spec, read_spec_document
from dataflow_processor.status import StatusReporter
from dataflow_processor.transforms.chain import TransformChain, TransformError

log = logging.getLogger("dataflow_processor")

DEFAULT_SECRETS_PATH = "/etc/dataflow-secrets"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _positive_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of milliseconds, not {text!r}")
    return value


def _add_condition_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--condition-timeout-ms",
        type=_positive_ms,
        default=os.environ.get("PROCESSOR_CONDITION_TIMEOUT_MS") or PipelineSettings().condition_timeout * 1000,
        help="longest one CEL condition may run on one record; a record that takes longer goes to the "
        "errors sink (env PROCESSOR_CONDITION_TIMEOUT_MS, default %(default)s)",
    )


def _add_tuning(parser: argparse.ArgumentParser) -> None:
    defaults = PipelineSettings()
    _add_condition_timeout(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=_env_int("PROCESSOR_BATCH_SIZE", defaults.batch_size),
        help="records per source batch and default sink batch (env PROCESSOR_BATCH_SIZE)",
    )
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=_env_float("PROCESSOR_LINGER_MS", defaults.linger_seconds * 1000),
        help="max wait to fill a batch (env PROCESSOR_LINGER_MS)",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=_env_int("PROCESSOR_QUEUE_SIZE", defaults.queue_size),
        help="batches buffered per stage queue (env PROCESSOR_QUEUE_SIZE)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=_env_float("PROCESSOR_SHUTDOWN_TIMEOUT_SECONDS", defaults.shutdown_timeout),
        help="seconds to flush in-flight records after SIGTERM",
    )


def _settings(args: argparse.Namespace) -> PipelineSettings:
    return PipelineSettings(
        batch_size=args.batch_size,
        linger_seconds=args.linger_ms / 1000,
        queue_size=args.queue_size,
        shutdown_timeout=args.shutdown_timeout,
        condition_timeout=args.condition_timeout_ms / 1000,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataflow-processor", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a DataFlow (the default command)")
    run.add_argument("--spec-path", required=True, help="spec.json from the ConfigMap")
    run.add_argument("--namespace", required=True)
    run.add_argument("--name", required=True)
    run.add_argument(
        "--secrets-path",
        default=os.environ.get("DATAFLOW_SECRETS_PATH", DEFAULT_SECRETS_PATH),
        help="mounted Secret dir or JSON file with resolved values (env DATAFLOW_SECRETS_PATH)",
    )
    run.add_argument("--health-port", type=int, default=_env_int("HEALTH_PORT", 9090))
    run.add_argument("--status-interval", type=float, default=_env_float("STATUS_INTERVAL_SECONDS", 5.0))
    run.add_argument(
        "--checkpoint-dir",
        default=os.environ.get(CHECKPOINT_DIR_ENV),
        help="keep polling sources' checkpoints in files here instead of the ConfigMap (env DATAFLOW_CHECKPOINT_DIR)",
    )
    _add_tuning(run)

    validate = sub.add_parser(
        "validate", help="check DataFlow manifests or specs (JSON or YAML) as the API server would, and more"
    )
    validate.add_argument("files", nargs="+", metavar="FILE")

    preview = sub.add_parser("preview", help="run the chain on JSON lines from stdin, print per-sink output")
    preview.add_argument("--spec-path", required=True)
    preview.add_argument("--secrets-path", default=None)
    preview.add_argument("--namespace", default="preview")
    preview.add_argument("--name", default="preview")
    _add_condition_timeout(preview)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    if not argv or argv[0] not in {"run", "validate", "preview", "-h", "--help", "--version"}:
        argv.insert(0, "run")
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------------------- run


async def serve(pipeline: Pipeline, *, health_port: int | None = 9090, status: StatusReporter | None = None) -> int:
    """Run a pipeline with health endpoints, status reporting and SIGTERM/SIGINT handling."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pipeline.stop)
    health = None
    if health_port is not None:
        health = HealthServer(pipeline.metrics, lambda: pipeline.ready, port=health_port)
        await health.start()
        log.info("health endpoints on port %d", health.port)
    status_task = asyncio.create_task(status.run()) if status is not None else None
    try:
        await pipeline.run()
        code = 0
    except Exception as exc:
        log.error("processor failed: %s", exc, exc_info=exc)
        code = 1
    finally:
        if status_task is not None:
            status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status_task
        if status is not None:
            await status.report()
        if health is not None:
            await health.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info(
        "processor stopped",
        extra={"processed": pipeline.metrics.processed_total, "errors": pipeline.metrics.errors_total},
    )
    return code


async def _run(args: argparse.Namespace) -> int:
    try:
        # The same admission rules the API server enforces: a spec that slipped past them (policy
        # disabled, edited ConfigMap) is refused here with the same messages.
        refused = validate_spec(read_spec_document(args.spec_path), args.name)
        if refused:
            raise SpecError([str(v) for v in refused])
        spec = load_spec(args.spec_path, args.secrets_path)
        checkpoints = open_checkpoint_store(args.namespace, args.name, args.checkpoint_dir)
        pipeline = Pipeline.from_spec(
            spec, namespace=args.namespace, name=args.name, settings=_settings(args), checkpoints=checkpoints
        )
    except (SpecError, TransformError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    status = StatusReporter.from_environment(pipeline.metrics, args.namespace, args.name, args.status_interval)
    settle_garbage_collector()
    return await serve(pipeline, health_port=args.health_port, status=status if status.enabled else None)


def settle_garbage_collector() -> None:
    """Keep start-up objects out of garbage collection and collect young objects less often.

    Models, the CEL grammar and the clients live as long as the process; without ``freeze`` every
    full collection walks them again while records stream (it cost up to half of the CPU time in
    ``bench/bench_kafka_to_postgres.py``). Records are acyclic and freed by reference counting, so
    a larger first-generation threshold only defers the rare cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# ---------------------------------------------------------------------------- validate


def _validate_file(path: str) -> list[str]:
    """Every problem of one file: admission rules (schema + CEL policy), then what only the processor
    can check (CEL conditions compile, paths parse, models accept it)."""
    try:
        doc = read_spec_document(path)
        refused = validate_spec(doc)
        if refused:
            return [str(v) for v in refused]
        spec = load_spec(path, None, require_resolved=False)
        TransformChain.from_spec(spec.transformations)
    except SpecError as exc:
        return exc.problems
    except TransformError as exc:
        return [str(exc)]
    except OSError as exc:
        return [str(exc)]
    return []


def _in_file(path: str, problem: str) -> str:
    """``path: problem``, once: problems about the file itself already start with its name."""
    return problem if problem.startswith(f"{path}: ") else f"{path}: {problem}"


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        problems = _validate_file(path)
        if problems:
            failed += 1
            for problem in problems:
                print(_in_file(path, problem), file=sys.stderr)
        else:
            print(f"{path}: valid")
    return 1 if failed else 0


# ---------------------------------------------------------------------------- preview


async def _preview(args: argparse.Namespace, lines: Sequence[bytes]) -> int:
    try:
        spec = load_spec(args.spec_path, args.secrets_path, require_resolved=False)
    except SpecError as exc:
        for problem in exc.problems:
            print(_in_file(args.spec_path, problem), file=sys.stderr)
        return 1
    sinks: dict[str, tuple[str, MemorySink]] = {}

    def make_sink(sink_spec: SinkSpec, context: ConnectorContext) -> Sink:
        sink = MemorySink()
        sink.type_name = sink_spec.type
        sinks[context.role] = (sink_spec.type, sink)
        return sink

    def make_source(_spec: SourceSpec, _context: ConnectorContext) -> MemorySource:
        return MemorySource([line for line in lines if line.strip()])

    try:
        pipeline = Pipeline.from_spec(
            spec,
            namespace=args.namespace,
            name=args.name,
            make_source=make_source,
            make_sink=make_sink,
            settings=PipelineSettings(
                linger_seconds=0.001, commit_interval=0.01, condition_timeout=args.condition_timeout_ms / 1000
            ),
        )
    except (TransformError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if pipeline.errors is None:  # show failures instead of only logging them
        log_sink = MemorySink()
        log_sink.type_name = "log"
        sinks["errors"] = ("log (no errors sink configured)", log_sink)
        pipeline.attach_errors_sink(log_sink)
    await pipeline.run()
    routes = {f"route:{r.route_id}": r.condition for r in pipeline.chain.routes}
    out = sys.stdout.buffer
    for role, (type_name, sink) in sinks.items():
        for record in sink.records:
            line: dict[str, Any] = {"sink": role, "type": type_name}
            if role in routes:
                line["condition"] = routes[role]
            line["value"] = record.value
            out.write(orjson.dumps(line) + b"\n")
    out.flush()
    return 0


# ---------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    level = os.environ.get("LOG_LEVEL")
    if args.command == "validate":
        return _validate(args)
    if args.command == "preview":
        configure_logging(args.namespace, args.name, level or "warning")
        return asyncio.run(_preview(args, sys.stdin.buffer.read().splitlines()))
    configure_logging(args.namespace, args.name, level)
    return asyncio.run(_run(args))
