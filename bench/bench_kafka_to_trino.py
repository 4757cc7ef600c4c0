"""End-to-end benchmark: Kafka → processor → Trino (the local ``memory`` catalog). Prints one JSON object.

1. Produces ``--records`` JSON records (~150 bytes, 4 partitions) into a fresh topic of the local Kafka
   (the same records as ``bench_kafka_to_postgres.py``).
2. Creates a typed table (``id bigint, status varchar, amount double, currency varchar, customer
   varchar, region varchar, items integer, note varchar``) in a fresh schema and runs the real
   ``dataflow-processor`` CLI on ``kafka → trino`` with ``batchSize`` = ``--insert-rows`` (rows per
   multi-row ``INSERT``). records/s is measured from the first to the last committed Kafka offset
   (offsets are committed only after the INSERT holding them succeeded).
3. Counts the rows back through Trino.

Trino plans every INSERT (its VALUES list is parsed, analysed and planned as SQL), so this sink is
far slower than COPY into PostgreSQL or an Iceberg append; ``--insert-rows`` is the main knob.

    eval "$(env/envctl vars)"; python bench/bench_kafka_to_trino.py [--records 200000] [--insert-rows 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kafka_to_nessie import wait4
from bench_kafka_to_postgres import PARTITIONS, committed, produce

COLUMNS = (
    "id bigint, status varchar, amount double, currency varchar, customer varchar, region varchar, "
    "items integer, note varchar"
)


def trino(sql: str) -> list[list[Any]]:
    import trino as client

    u = urlsplit(os.environ["DATAFLOW_TRINO_URL"])
    conn = client.dbapi.connect(host=u.hostname, port=u.port, http_scheme=u.scheme, user="bench")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


async def run_processor(args: argparse.Namespace, topic: str, schema: str, workdir: Path) -> dict[str, Any]:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [args.bootstrap], "topic": topic, "consumerGroup": group}},
        "sink": {
            "type": "trino",
            "trino": {
                "serverURL": os.environ["DATAFLOW_TRINO_URL"],
                "catalog": args.catalog,
                "schema": schema,
                "table": "events",
                "batchSize": args.insert_rows,
                "batchFlushIntervalSeconds": 1,
            },
        },
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    cli = shutil.which("dataflow-processor") or str(Path(sys.executable).parent / "dataflow-processor")
    command = [
        cli,
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
        str(workdir / "none"),
        "--batch-size",
        str(args.batch),
    ]
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
    env["LOG_LEVEL"] = "warning"
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
    return {
        "records_per_second": round((args.records - first_count) / seconds),
        "seconds": round(seconds, 2),
        "seconds_including_start": round(done_at - started, 2),
        "peak_rss_mib": round(rss / 1024, 1),
        "cpu_seconds": round(cpu, 1),
        "exit_code": code,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, schema = f"bench_{suffix}", f"bench_{suffix}"
    t0 = time.monotonic()
    _, avg = await produce(args.bootstrap, topic, args.records)
    produce_seconds = time.monotonic() - t0
    trino(f'CREATE SCHEMA "{args.catalog}"."{schema}"')
    trino(f'CREATE TABLE "{args.catalog}"."{schema}"."events" ({COLUMNS})')
    try:
        with tempfile.TemporaryDirectory(prefix="bench-k2trino-") as workdir:
            ours = await run_processor(args, topic, schema, Path(workdir))
        rows, distinct = trino(f'SELECT count(*), count(DISTINCT id) FROM "{args.catalog}"."{schema}"."events"')[0]
    finally:
        if not args.keep:
            trino(f'DROP TABLE IF EXISTS "{args.catalog}"."{schema}"."events"')
            trino(f'DROP SCHEMA IF EXISTS "{args.catalog}"."{schema}"')
    return {
        "benchmark": "kafka_to_trino",
        "records": args.records,
        "avg_record_bytes": round(avg, 1),
        "partitions": PARTITIONS,
        "catalog": args.catalog,
        "processor": ours,
        "rows_written": rows,
        "distinct_ids": distinct,
        "records_per_second": ours["records_per_second"],
        "records_per_cpu_second": round(args.records / ours["cpu_seconds"]) if ours["cpu_seconds"] else None,
        "inserts": -(-args.records // args.insert_rows),
        "settings": {"source_batch": args.batch, "insert_rows": args.insert_rows},
        "produce_seconds": round(produce_seconds, 1),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000, help="processor --batch-size (source batches)")
    parser.add_argument("--insert-rows", type=int, default=2000, help="Trino sink batchSize: rows per INSERT")
    parser.add_argument("--catalog", default=os.environ.get("DATAFLOW_TRINO_CATALOG", "memory"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the schema and table")
    parser.add_argument("--bootstrap", default=os.environ.get("DATAFLOW_KAFKA_BOOTSTRAP"))
    args = parser.parse_args()
    if not args.bootstrap or not os.environ.get("DATAFLOW_TRINO_URL"):
        sys.exit('DATAFLOW_KAFKA_BOOTSTRAP / DATAFLOW_TRINO_URL unset: eval "$(env/envctl vars)" first')
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
