"""End-to-end benchmark: Kafka → processor (timestamp, filter ~90 %, select) → PostgreSQL, against a raw
baseline loop (consume + COPY, no transformation) on the same data, in one run. Prints one JSON object.

1. Produces ``--records`` JSON records (~150 bytes, 4 partitions) into a fresh topic of the local Kafka.
2. Runs the real ``dataflow-processor`` CLI as a subprocess on a spec with the 3-step chain into a
   typed table, and measures records/s from the first to the last committed offset (the pipeline
   commits only what is written, so the committed offsets are the progress of the whole chain).
3. Runs the baseline in a subprocess of this script: aiokafka ``getmany`` → ``orjson.loads`` →
   binary ``COPY`` of all fields, one transaction per batch, explicit offset commits. It is the
   ceiling a Python processor on aiokafka + asyncpg can reach on this machine.

Peak RSS of each subprocess comes from ``wait4``. ``--profile`` runs the processor under cProfile
and adds its hottest functions to the output.

    eval "$(env/envctl vars)"; python bench/bench_kafka_to_postgres.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 4
CHAIN = [
    {"type": "timestamp", "timestamp": {"fieldName": "ingested_at"}},
    {"type": "filter", "filter": {"condition": "$.status == 'paid'"}},
    {"type": "select", "select": {"fields": ["id", "status", "amount", "customer", "ingested_at"]}},
]
SINK_TABLE = "(id bigint, status text, amount double precision, customer text, ingested_at timestamptz)"
BASE_TABLE = (
    "(id bigint, status text, amount double precision, currency text, customer text, region text, items int, note text)"
)
BASE_FIELDS = ["id", "status", "amount", "currency", "customer", "region", "items", "note"]


def make_value(i: int, rng: random.Random) -> bytes:
    return orjson.dumps(
        {
            "id": i,
            "status": "paid" if rng.random() < 0.9 else "pending",
            "amount": round(rng.uniform(1, 999), 2),
            "currency": "EUR",
            "customer": f"c-{rng.randrange(10**6):06d}",
            "region": rng.choice(["eu-west", "us-east", "ap-south"]),
            "items": rng.randrange(1, 9),
            "note": "x" * rng.randrange(23, 31),
        }
    )


async def produce(bootstrap: str, topic: str, count: int) -> tuple[int, float]:
    """Fill the topic; return (records with status paid, average value size)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    rng = random.Random(7)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    paid = 0
    size = 0
    try:
        i = 0
        while i < count:
            futures = []
            for partition in range(PARTITIONS):
                batch = producer.create_batch()
                while i < count:
                    value = make_value(i, rng)
                    if batch.append(key=None, value=value, timestamp=None) is None:
                        break
                    paid += b'"status":"paid"' in value
                    size += len(value)
                    i += 1
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return paid, size / count


async def committed(bootstrap: str, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for p in range(PARTITIONS):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait4(proc: subprocess.Popen[bytes]) -> tuple[int, int, float]:
    """Exit status, peak RSS (KiB) and CPU seconds (user + system) of a child."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


async def run_processor(args: argparse.Namespace, topic: str, table: str, workdir: Path) -> dict[str, Any]:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [args.bootstrap], "topic": topic, "consumerGroup": group}},
        "transformations": CHAIN,
        "sink": {
            "type": "postgresql",
            "postgresql": {"connectionString": args.dsn, "table": table, "batchSize": args.sink_batch},
        },
    }
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    cli = shutil.which("dataflow-processor") or str(Path(sys.executable).parent / "dataflow-processor")
    command = [cli]
    profile = workdir / "processor.prof"
    if args.profile:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "dataflow_processor"]
    command += [
        "run",
        "--spec-path",
        str(spec_path),
        "--namespace",
        "bench",
        "--name",
        "bench",
        "--health-port",
        "0",
        "--secrets-path",
        str(workdir / "none"),
        "--batch-size",
        str(args.batch),
    ]
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
    env["LOG_LEVEL"] = "warning"
    log = open(workdir / "processor.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    first_at = first_count = None
    done_at = None
    first_cpu = done_cpu = 0.0
    try:
        while True:
            await asyncio.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"processor exited early:\n{(workdir / 'processor.log').read_text()[-3000:]}")
            count = await committed(args.bootstrap, topic, group)
            now = time.monotonic()
            if first_at is None and count > 0:
                first_at, first_count, first_cpu = now, count, cpu_seconds(proc.pid)
            if count >= args.records:
                done_at, done_cpu = now, cpu_seconds(proc.pid)
                break
            if now - started > args.timeout:
                raise RuntimeError(f"processor too slow: {count} of {args.records} after {args.timeout}s")
    finally:
        proc.send_signal(signal.SIGTERM)
        code, rss, cpu = wait4(proc)
        log.close()
    assert first_at is not None and first_count is not None and done_at is not None
    seconds = max(done_at - first_at, 1e-9)
    result = {
        "records_per_second": round((args.records - first_count) / seconds),
        "cpu_us_per_record": round((done_cpu - first_cpu) / (args.records - first_count) * 1e6, 1),
        "seconds": round(seconds, 2),
        "seconds_including_start": round(done_at - started, 2),
        "peak_rss_mib": round(rss / 1024, 1),
        "cpu_seconds_including_start": round(cpu, 2),
        "exit_code": code,
    }
    if args.profile and profile.exists():
        out = io.StringIO()
        stats = pstats.Stats(str(profile), stream=out)
        stats.sort_stats("tottime").print_stats(25)
        result["profile_tottime_top25"] = out.getvalue().splitlines()[-30:]
    return result


# ----------------------------------------------------------------------------- baseline (own process)


async def baseline_worker(bootstrap: str, dsn: str, topic: str, table: str, records: int, batch: int) -> None:
    conn = await asyncpg.connect(dsn)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-base-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    loads = orjson.loads
    fields = BASE_FIELDS
    seen = 0
    started = None
    started_cpu = 0.0
    try:
        while seen < records:
            data = await consumer.getmany(timeout_ms=1000, max_records=batch)
            if not data:
                continue
            if started is None:
                started = time.monotonic()
                usage = resource.getrusage(resource.RUSAGE_SELF)
                started_cpu = usage.ru_utime + usage.ru_stime
            rows = []
            offsets = {}
            for tp, messages in data.items():
                for message in messages:
                    value = loads(message.value)
                    rows.append(tuple([value[f] for f in fields]))
                offsets[tp] = messages[-1].offset + 1
            async with conn.transaction():
                await conn.copy_records_to_table(table, records=rows, columns=fields)
            await consumer.commit(offsets)
            seen += len(rows)
    finally:
        await consumer.stop()
        await conn.close()
    assert started is not None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - started_cpu
    print(json.dumps({"seconds": time.monotonic() - started, "records": seen, "cpu_seconds": cpu}))


def run_baseline(args: argparse.Namespace, topic: str, table: str) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--baseline-worker",
        "--topic",
        topic,
        "--table",
        table,
        "--records",
        str(args.records),
        "--batch",
        str(args.sink_batch),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    code, rss, cpu = wait4(proc)
    if code != 0:
        raise RuntimeError(f"baseline failed ({code})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "records_per_second": round(result["records"] / result["seconds"]),
        "cpu_us_per_record": round(result["cpu_seconds"] / result["records"] * 1e6, 1),
        "seconds": round(result["seconds"], 2),
        "peak_rss_mib": round(rss / 1024, 1),
        "cpu_seconds_including_start": round(cpu, 2),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    topic, table, base = f"bench_{suffix}", f"bench_sink_{suffix}", f"bench_base_{suffix}"
    t0 = time.monotonic()
    paid, avg = await produce(args.bootstrap, topic, args.records)
    produce_seconds = time.monotonic() - t0
    conn = await asyncpg.connect(args.dsn)
    await conn.execute(f'CREATE TABLE "{table}" {SINK_TABLE}')
    await conn.execute(f'CREATE TABLE "{base}" {BASE_TABLE}')
    try:
        with tempfile.TemporaryDirectory(prefix="bench-k2pg-") as workdir:
            ours = await run_processor(args, topic, table, Path(workdir))
        rows = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
        baseline = run_baseline(args, topic, base)
        base_rows = await conn.fetchval(f'SELECT count(*) FROM "{base}"')
    finally:
        if not args.keep:
            await conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            await conn.execute(f'DROP TABLE IF EXISTS "{base}"')
        await conn.close()
    ratio = ours["records_per_second"] / baseline["records_per_second"]
    return {
        "benchmark": "kafka_to_postgres",
        "records": args.records,
        "avg_record_bytes": round(avg, 1),
        "partitions": PARTITIONS,
        "chain": [step["type"] for step in CHAIN],
        "rows_expected": paid,
        "rows_written": rows,
        "baseline_rows_written": base_rows,
        "processor": ours,
        "baseline": baseline,
        "records_per_second": ours["records_per_second"],
        "baseline_records_per_second": baseline["records_per_second"],
        "ratio_to_baseline": round(ratio, 3),
        "peak_rss_mib": ours["peak_rss_mib"],
        "goal": {"records_per_second": 50_000, "ratio_to_baseline": 0.5},
        "meets_goal": ours["records_per_second"] >= 50_000 and ratio >= 0.5,
        "settings": {"source_batch": args.batch, "sink_batch": args.sink_batch},
        "produce_seconds": round(produce_seconds, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="processor --batch-size (source batches)")
    parser.add_argument("--sink-batch", type=int, default=5000, help="PostgreSQL sink batchSize (and baseline batch)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--profile", action="store_true", help="run the processor under cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the tables")
    parser.add_argument("--bootstrap", default=os.environ.get("DATAFLOW_KAFKA_BOOTSTRAP"))
    parser.add_argument("--dsn", default=os.environ.get("DATAFLOW_PG_DSN"))
    parser.add_argument("--baseline-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.bootstrap or not args.dsn:
        sys.exit('DATAFLOW_KAFKA_BOOTSTRAP / DATAFLOW_PG_DSN unset: eval "$(env/envctl vars)" first')
    if args.baseline_worker:
        asyncio.run(baseline_worker(args.bootstrap, args.dsn, args.topic, args.table, args.records, args.batch))
        return
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
