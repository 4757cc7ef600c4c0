"""Restart of the real ``dataflow-processor`` CLI mid-stream (SIGTERM, and separately SIGKILL), then a
second start on the same spec: the sink must end with every produced record.

* Kafka → PostgreSQL, append (a table without a unique key: not idempotent) — duplicates are
  allowed only after SIGKILL and are counted in the output; after SIGTERM (flush + commit) none.
* Kafka → PostgreSQL with ``upsertMode`` — never a duplicate, and every row holds its last value.
* PostgreSQL → Kafka (polling source with its checkpoint file) — a Kafka topic is not idempotent:
  duplicates counted after SIGKILL, none after SIGTERM.

Records are produced while the processor runs, so the stop really lands mid-stream. Each case
prints one JSON line (``-s`` shows it) with the counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import require_env
from tests.integration.conftest import create_topic, unique

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TOTAL = 20_000
PARTITIONS = 4  # what create_topic makes


def processor_command() -> list[str]:
    found = shutil.which("dataflow-processor") or str(Path(sys.executable).parent / "dataflow-processor")
    if not Path(found).exists():
        return [sys.executable, "-m", "dataflow_processor"]
    return [found]


class Processor:
    """One run of the CLI as a subprocess, logging to a file."""

    def __init__(self, spec: dict[str, Any], workdir: Path, name: str, secrets: dict[str, str] | None = None) -> None:
        self.spec_path = workdir / "spec.json"
        self.spec_path.write_text(json.dumps(spec))
        self.secrets_path = workdir / ("secrets.json" if secrets else "no-secrets")
        if secrets:
            self.secrets_path.write_text(json.dumps(secrets))  # the mounted Secret's values
        self.workdir = workdir
        self.name = name
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
        env.pop("DATAFLOW_CHECKPOINT_DIR", None)
        env["LOG_LEVEL"] = "info"
        log = open(self.workdir / f"run{self.runs}.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                *processor_command(),
                "run",
                "--spec-path",
                str(self.spec_path),
                "--namespace",
                "it",
                "--name",
                self.name,
                "--health-port",
                "0",
                "--secrets-path",
                str(self.secrets_path),
                "--checkpoint-dir",
                str(self.workdir / "checkpoints"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()

    def stop(self, sig: signal.Signals, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"processor did not stop within {timeout}s after {sig.name}:\n{self.logs()}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.workdir.glob("run*.log")))

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()


async def produce_slowly(
    bootstrap: str, topic: str, total: int, chunk: int = 500, pause: float = 0.3, hold: asyncio.Event | None = None
) -> None:
    """Produce in chunks; with `hold`, the second half waits for it, so a stop is always mid-stream
    however slow the processor is to start on a loaded machine."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, total, chunk):
            if hold is not None and start >= total // 2:
                await hold.wait()
            futures = [
                await producer.send(topic, orjson.dumps({"id": i, "name": f"n{i}", "v": i % 97}), key=b"%d" % i)
                for i in range(start, min(start + chunk, total))
            ]
            await asyncio.gather(*futures)
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def wait_until(check: Any, processor: Processor, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if not processor.alive():
            raise AssertionError(
                f"processor exited ({processor.proc.returncode}) while waiting for {what}:\n"  # type: ignore[union-attr]
                f"{processor.logs()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{processor.logs()}")
        await asyncio.sleep(0.2)


def report(case: str, sig: signal.Signals, **counts: Any) -> None:
    print(json.dumps({"case": case, "signal": sig.name, **counts}))


@pytest.fixture
def env_ready() -> tuple[str, str]:
    bootstrap, dsn = require_env("DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN")
    return bootstrap, dsn


@pytest.mark.parametrize("upsert", [False, True], ids=["append", "upsert"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_kafka_to_postgresql_survives_restart(
    env_ready: tuple[str, str], tmp_path: Path, sig: signal.Signals, upsert: bool
) -> None:
    bootstrap, dsn = env_ready
    topic, table, name = unique("rs"), unique("rs"), unique("restart").replace("_", "-")
    await create_topic(bootstrap, topic)
    pg = await asyncpg.connect(dsn)
    key = "id int PRIMARY KEY" if upsert else "id int NOT NULL"
    await pg.execute(f'CREATE TABLE "{table}" ({key}, name text, v int)')
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": name}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": dsn, "table": table, "upsertMode": upsert}},
    }
    processor = Processor(spec, tmp_path, name)
    second_half = asyncio.Event()
    producing = asyncio.create_task(produce_slowly(bootstrap, topic, TOTAL, hold=second_half))
    try:
        processor.start()

        async def some_rows() -> bool:
            return int(await pg.fetchval(f'SELECT count(*) FROM "{table}"')) >= TOTAL // 10

        await wait_until(some_rows, processor, 60, "the first rows")
        await asyncio.sleep(1.5)  # past a commit interval: the restart resumes from a committed offset
        assert not producing.done(), "production finished before the stop: not mid-stream"
        code = processor.stop(sig)
        assert code == (0 if sig is signal.SIGTERM else -signal.SIGKILL), processor.logs()
        rows_at_stop = int(await pg.fetchval(f'SELECT count(*) FROM "{table}"'))
        assert rows_at_stop < TOTAL
        second_half.set()
        processor.start()
        await producing

        async def all_ids() -> bool:
            return int(await pg.fetchval(f'SELECT count(DISTINCT id) FROM "{table}"')) >= TOTAL

        await wait_until(all_ids, processor, 120, "every record")
        await asyncio.sleep(1.0)  # anything still in flight lands
        assert processor.stop(signal.SIGTERM) == 0, processor.logs()
        rows = await pg.fetch(f'SELECT id, name, v FROM "{table}"')
        ids = Counter(r["id"] for r in rows)
        assert set(ids) == set(range(TOTAL))
        assert all(r["name"] == f"n{r['id']}" and r["v"] == r["id"] % 97 for r in rows)
        duplicates = len(rows) - len(ids)
        report(
            "kafka->postgresql " + ("upsert" if upsert else "append"),
            sig,
            produced=TOTAL,
            rows_at_stop=rows_at_stop,
            rows=len(rows),
            duplicates=duplicates,
        )
        if upsert or sig is signal.SIGTERM:
            assert duplicates == 0
    finally:
        processor.kill()
        producing.cancel()
        await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
        await pg.close()


async def topic_ids(bootstrap: str, topic: str) -> Counter[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        seen: Counter[int] = Counter()
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.update(orjson.loads(r.value)["id"] for r in records)
        return seen
    finally:
        await consumer.stop()


async def topic_size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_postgresql_to_kafka_resumes_from_checkpoint(
    env_ready: tuple[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    bootstrap, dsn = env_ready
    topic, table, name = unique("rs"), unique("rs"), unique("restart").replace("_", "-")
    await create_topic(bootstrap, topic)
    pg = await asyncpg.connect(dsn)
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, name text, v int)')
    half = TOTAL // 2
    await pg.copy_records_to_table(table, records=[(i, f"n{i}", i % 97) for i in range(half)])
    spec = {
        "source": {
            "type": "postgresql",
            "postgresql": {"connectionString": dsn, "table": table, "pollInterval": 1, "readBatchSize": 500},
        },
        "sink": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic}},
    }
    processor = Processor(spec, tmp_path, name)
    try:
        processor.start()

        async def some_messages() -> bool:
            return await topic_size(bootstrap, topic) >= TOTAL // 10

        await wait_until(some_messages, processor, 60, "the first messages")
        code = processor.stop(sig)
        assert code == (0 if sig is signal.SIGTERM else -signal.SIGKILL), processor.logs()
        at_stop = await topic_size(bootstrap, topic)
        assert at_stop < TOTAL, "everything was read before the stop: not mid-stream"
        # more rows arrive while it is down
        await pg.copy_records_to_table(table, records=[(i, f"n{i}", i % 97) for i in range(half, TOTAL)])
        checkpoint_file = tmp_path / "checkpoints" / f"it.{name}.json"
        checkpoint = json.loads(checkpoint_file.read_text()) if checkpoint_file.exists() else {"cursor": None}
        processor.start()

        async def enough() -> bool:
            return await topic_size(bootstrap, topic) >= TOTAL

        await wait_until(enough, processor, 120, "every row")
        await asyncio.sleep(1.5)  # one more poll: nothing new may come
        assert processor.stop(signal.SIGTERM) == 0, processor.logs()
        seen = await topic_ids(bootstrap, topic)
        assert set(seen) == set(range(TOTAL))
        duplicates = sum(seen.values()) - len(seen)
        report(
            "postgresql->kafka",
            sig,
            rows=TOTAL,
            messages_at_stop=at_stop,
            checkpoint_at_stop=checkpoint["cursor"],
            messages=sum(seen.values()),
            duplicates=duplicates,
        )
        if sig is signal.SIGTERM:
            assert duplicates == 0
            assert checkpoint["cursor"] == [at_stop - 1]  # resumes exactly after the last delivered row
    finally:
        processor.kill()
        await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
        await pg.close()
