"""End-to-end benchmark: Kafka → processor → Nessie (Iceberg on the S3 store). Prints one JSON object.

1. Produces ``--records`` JSON records (~150 bytes, 4 partitions) into a fresh topic of the local Kafka
   (the same records as ``bench_kafka_to_postgres.py``).
2. Runs the real ``dataflow-processor`` CLI as a subprocess on a spec ``kafka → nessie`` with
   ``autoCreateTable`` (typed columns) and ``batchSize`` = ``--commit-rows``, and measures records/s
   from the first to the last committed Kafka offset (offsets are committed only after the Iceberg
   commit holding them, so they are the progress of the whole path).
3. Reads the table back: rows, commits (the current snapshot's sequence number), data files and
   their sizes, so the commit size is measured rather than assumed.

``records_per_cpu_second`` (records / the processor's user+system CPU time) does not depend on how
busy the shared machine is; ``load_average_1m_at_end`` says how busy it was.

    eval "$(env/envctl vars)"; python bench/bench_kafka_to_nessie.py [--records 1000000] [--commit-rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kafka_to_postgres import PARTITIONS, committed, produce


def wait4(proc: subprocess.Popen[bytes]) -> tuple[int, int, float]:
    """Exit status, peak RSS (KiB) and CPU seconds (user + system) of a child."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def nessie_block(args: argparse.Namespace, namespace: str, table: str) -> dict[str, Any]:
    return {
        "baseURL": os.environ["DATAFLOW_NESSIE_URL"],
        "warehouse": os.environ["DATAFLOW_NESSIE_WAREHOUSE"],
        "namespace": namespace,
        "table": table,
        "autoCreateTable": True,
        "batchSize": args.commit_rows,
        "batchFlushIntervalSeconds": args.flush_seconds,
        "s3Region": os.environ["DATAFLOW_S3_REGION"],
        "accessKeySecretRef": {"name": "s3", "key": "access-key"},
        "secretAccessKeySecretRef": {"name": "s3", "key": "secret-key"},
    }


def catalog() -> Any:
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog(
        "bench",
        uri=f"{os.environ['DATAFLOW_NESSIE_ICEBERG_URL']}/main|{os.environ['DATAFLOW_NESSIE_WAREHOUSE']}",
        **{
            "s3.access-key-id": os.environ["DATAFLOW_S3_ACCESS_KEY"],
            "s3.secret-access-key": os.environ["DATAFLOW_S3_SECRET_KEY"],
            "s3.region": os.environ["DATAFLOW_S3_REGION"],
        },
    )


async def run_processor(args: argparse.Namespace, topic: str, namespace: str, workdir: Path) -> dict[str, Any]:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [args.bootstrap], "topic": topic, "consumerGroup": group}},
        "sink": {"type": "nessie", "nessie": nessie_block(args, namespace, "events")},
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    secrets = {
        "sink.nessie.accessKey": os.environ["DATAFLOW_S3_ACCESS_KEY"],
        "sink.nessie.secretAccessKey": os.environ["DATAFLOW_S3_SECRET_KEY"],
    }
    (workdir / "secrets.json").write_text(json.dumps(secrets))
    cli = shutil.which("dataflow-processor") or str(Path(sys.executable).parent / "dataflow-processor")
    profile = workdir / "processor.prof"
    command = [cli]
    if args.profile:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "dataflow_processor"]
    command += [
        "run",
        "--spec-path",
        str(workdir / "spec.json"),
        "--namespace",
        "bench",
        "--name",
        f"bench-{uuid.uuid4().hex[:6]}",
        "--health-port",
        "0",
        "--secrets-path",
        str(workdir / "secrets.json"),
        "--batch-size",
        str(args.batch),
    ]
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
    env["LOG_LEVEL"] = "warning"
    env["DATAFLOW_CHECKPOINT_DIR"] = str(workdir / "checkpoints")
    log_path = workdir / "processor.log"
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    first_at = first_count = done_at = None
    try:
        while True:
            await asyncio.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"processor exited early:\n{log_path.read_text()[-3000:]}")
            count = await committed(args.bootstrap, topic, group)
            now = time.monotonic()
            if first_at is None and count > 0:
                first_at, first_count = now, count
            if count >= args.records:
                done_at = now
                break
            if now - started > args.timeout:
                raise RuntimeError(f"processor too slow: {count} of {args.records} after {args.timeout}s")
    finally:
        proc.send_signal(signal.SIGTERM)
        code, rss, cpu = wait4(proc)
        log.close()
    assert first_at is not None and first_count is not None and done_at is not None
    seconds = max(done_at - first_at, 1e-9)
    hottest: list[str] = []
    if args.profile and profile.exists():
        out = io.StringIO()
        pstats.Stats(str(profile), stream=out).sort_stats("tottime").print_stats(25)
        hottest = out.getvalue().splitlines()[-30:]
    return {
        "records_per_second": round((args.records - first_count) / seconds),
        "records_per_second_including_first_commit": round(args.records / max(done_at - started, 1e-9)),
        "seconds": round(seconds, 2),
        "seconds_including_start": round(done_at - started, 2),
        "peak_rss_mib": round(rss / 1024, 1),
        "cpu_seconds": round(cpu, 1),
        "exit_code": code,
        **({"profile_tottime_top25": hottest} if hottest else {}),
    }


def inspect_table(namespace: str) -> dict[str, Any]:
    table = catalog().load_table((namespace, "events"))
    snapshot = table.current_snapshot()
    files = table.inspect.files().to_pylist()
    counts = sorted(f["record_count"] for f in files)
    return {
        "rows": int(snapshot.summary.get("total-records", "0")) if snapshot else 0,
        "commits": int(snapshot.sequence_number or 0) if snapshot else 0,
        "data_files": len(files),
        "rows_per_file_min": counts[0] if counts else 0,
        "rows_per_file_median": counts[len(counts) // 2] if counts else 0,
        "rows_per_file_max": counts[-1] if counts else 0,
        "mib_per_file_median": round(sorted(f["file_size_in_bytes"] for f in files)[len(files) // 2] / 2**20, 2)
        if files
        else 0,
    }


def drop(namespace: str) -> None:
    cat = catalog()
    for ident in cat.list_tables(namespace):
        cat.purge_table(ident) if hasattr(cat, "purge_table") else cat.drop_table(ident)
    cat.drop_namespace(namespace)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, namespace = f"bench_{suffix}", f"bench_{suffix}"
    t0 = time.monotonic()
    _, avg = await produce(args.bootstrap, topic, args.records)
    produce_seconds = time.monotonic() - t0
    catalog().create_namespace(namespace)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-k2nessie-") as workdir:
            ours = await run_processor(args, topic, namespace, Path(workdir))
        table = inspect_table(namespace)
    finally:
        if not args.keep:
            drop(namespace)
    rows_per_commit = round(table["rows"] / table["commits"]) if table["commits"] else 0
    return {
        "benchmark": "kafka_to_nessie",
        "records": args.records,
        "avg_record_bytes": round(avg, 1),
        "partitions": PARTITIONS,
        "processor": ours,
        "table": table,
        "records_per_second": ours["records_per_second"],
        "records_per_cpu_second": round(args.records / ours["cpu_seconds"]) if ours["cpu_seconds"] else None,
        "rows_per_commit": rows_per_commit,
        "exactly_once": table["rows"] == args.records,
        "goal": {"records_per_second": 20_000, "rows_per_commit": 10_000},
        "meets_goal": ours["records_per_second"] >= 20_000 and rows_per_commit >= 10_000,
        "settings": {"source_batch": args.batch, "commit_rows": args.commit_rows, "flush_seconds": args.flush_seconds},
        "produce_seconds": round(produce_seconds, 1),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="processor --batch-size (source batches)")
    parser.add_argument("--commit-rows", type=int, default=20_000, help="Nessie sink batchSize: rows per commit")
    parser.add_argument("--flush-seconds", type=int, default=10, help="Nessie sink batchFlushIntervalSeconds")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="keep the namespace and table")
    parser.add_argument("--profile", action="store_true", help="run the processor under cProfile")
    parser.add_argument("--bootstrap", default=os.environ.get("DATAFLOW_KAFKA_BOOTSTRAP"))
    args = parser.parse_args()
    if not args.bootstrap or not os.environ.get("DATAFLOW_NESSIE_URL"):
        sys.exit('DATAFLOW_KAFKA_BOOTSTRAP / DATAFLOW_NESSIE_URL unset: eval "$(env/envctl vars)" first')
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
