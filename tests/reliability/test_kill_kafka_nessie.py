"""Exactly once under faults (issue #9, CI scale): the real CLI, Kafka → Nessie (an Iceberg table).

N ids (``RELIABILITY_N``, 20,000 in CI) are produced into a fresh topic of four partitions while the processor writes them to a fresh Iceberg table through Nessie (small commits:
``COMMIT_ROWS`` rows or ``COMMIT_SECONDS``, so kills land between many commits). Meanwhile: six
``kill -9`` at random moments (``RELIABILITY_SEED``; each followed by a restart) and one Kafka
broker restart. At the end the table is read back with pyiceberg through Nessie's Iceberg REST
catalog and every id is classified against the topic read back from the start: written once,
duplicated (more rows than the topic has records of it), or lost. Both must be 0 — the sink keeps the source positions it committed in the snapshot summary (``dataflow.positions``), so a
restarted processor skips what an Iceberg commit already holds but the Kafka offsets did not.
The positions of the last snapshot must account for every record of the topic. (The test's
producer may send an id twice when the broker restarts mid-chunk: that is the topic's content,
counted apart as ``produced_twice``, and the table must hold it twice.) The test prints its
classification table, and the same as one JSON line (``-s`` shows them), with the number of
records the restarted runs skipped as already committed.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import require_env
from tests.integration.conftest import (  # noqa: F401 - nessie_namespace is a fixture
    create_topic,
    nessie_catalog,
    nessie_connector,
    nessie_namespace,
    nessie_secret_refs,
    unique,
)
from tests.integration.test_nessie_exactly_once import skipped_in_log
from tests.reliability.harness import (
    Classification,
    Producer,
    Schedule,
    Supervisor,
    kill_repeatedly,
    restart_kafka,
    scale,
    seed,
    wait_accounted,
)
from tests.reliability.test_restart_kafka_pg import PARTITIONS, topic_ids

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TABLE = "events"
COMMIT_ROWS = 2000
COMMIT_SECONDS = 2.0
KILLS = 6


def payload(i: int) -> bytes:
    return orjson.dumps({"id": i, "v": i % 97, "pad": "x" * 32})


def spec(bootstrap: str, topic: str, name: str, namespace: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The spec, and the Secret's values (the S3 keys)."""
    sink = nessie_connector(
        namespace, TABLE, autoCreateTable=True, batchSize=COMMIT_ROWS, batchFlushIntervalSeconds=COMMIT_SECONDS
    )
    secrets = nessie_secret_refs(sink)
    return {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": name}},
        "sink": {"type": "nessie", "nessie": sink},
    }, secrets


def snapshot_summary(namespace: str) -> dict[str, str]:
    """The current snapshot's summary ({} before the first commit)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        snapshot = nessie_catalog().load_table((namespace, TABLE)).current_snapshot()
    except NoSuchTableError:
        return {}
    return dict(snapshot.summary.additional_properties) if snapshot is not None and snapshot.summary else {}


def read_ids(namespace: str) -> list[int]:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = nessie_catalog().load_table((namespace, TABLE))
    except NoSuchTableError:
        return []
    if table.current_snapshot() is None:
        return []
    return [int(i) for i in table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()]


async def classify(namespace: str, n: int, topic: Counter[int]) -> Classification:
    """Ids in the table as often as in the topic are written; more often, duplicated; less, lost."""
    counts = Counter(await asyncio.to_thread(read_ids, namespace))
    result = Classification(produced=n, errors_sink=False)
    result.written = {i for i, c in counts.items() if c >= topic[i]}
    result.duplicated = {i for i, c in counts.items() if c > topic[i]}
    result.duplicates = {"table": sum(max(0, c - topic[i]) for i, c in counts.items())}
    return result


async def wait_total_records(namespace: str, n: int, timeout: float) -> None:
    """Until the table's snapshot counts ``n`` records (cheap: no scan); then the scans confirm."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if int((await asyncio.to_thread(snapshot_summary, namespace)).get("total-records", "0")) >= n:
            return
        await asyncio.sleep(2)


@pytest.fixture
def bootstrap() -> str:
    (servers,) = require_env("DATAFLOW_KAFKA_BOOTSTRAP")
    return servers


async def test_exactly_once_under_faults(bootstrap: str, nessie_namespace: str, tmp_path: Path) -> None:  # noqa: F811
    namespace = nessie_namespace
    n, rng_seed = scale(), seed()
    rng = random.Random(rng_seed)
    topic = unique("rn")
    name = unique("killn").replace("_", "-")
    await create_topic(bootstrap, topic, partitions=PARTITIONS)
    flow, secrets = spec(bootstrap, topic, name, namespace)
    supervisor = Supervisor(flow, tmp_path, name, secrets)
    producer = Producer(bootstrap, topic, n, payload)
    schedule = Schedule(producer.seconds * 1.25)

    async def faults() -> None:  # six kill -9 at random moments, a broker restart concurrently
        moments = [rng.uniform(0.05, 0.95) for _ in range(KILLS)]

        async def broker() -> None:
            await schedule.at(rng.uniform(0.2, 0.6))
            await restart_kafka(schedule, producer)

        await asyncio.gather(kill_repeatedly(supervisor, schedule, producer, moments, KILLS), broker())

    try:
        supervisor.start()
        producing = asyncio.create_task(producer.run())
        await faults()
        await producing
        schedule.note("produced", retries=producer.retries)
        in_topic = await topic_ids(bootstrap, topic)
        records = sum(in_topic.values())
        await wait_total_records(namespace, records, timeout=180)
        result = await wait_accounted(lambda: classify(namespace, n, in_topic), supervisor, timeout=60)
        schedule.note("classified")
        code = await supervisor.stop()
        result = await classify(namespace, n, in_topic)
        summary = await asyncio.to_thread(snapshot_summary, namespace)
        positions = json.loads(summary.get("dataflow.positions", "{}")).get(f"it/{name}/sink", {})
        logs = sorted(tmp_path.glob("run*.log"))
        extra = {
            "seed": rng_seed,
            "partitions": PARTITIONS,
            "produced_twice": records - len(in_topic),
            "runs": supervisor.processor.runs,
            "skipped_as_committed": sum(skipped_in_log(log) for log in logs),
            "table_total_records": int(summary.get("total-records", "0")),
            **supervisor.figures(),
            **schedule.figures(),
        }
        result.print("kafka -> nessie: kill -9 / kafka restart", extra)
        assert code == 0, supervisor.logs()[-8000:]
        assert supervisor.kills >= 5
        assert not result.lost, sorted(result.lost)[:50]
        assert not result.duplicated, sorted(result.duplicated)[:50]
        assert set(in_topic) == set(range(n))  # the producer's own check: every id is in the topic
        # the positions in the last snapshot account for every record (one output per record)
        assert sorted(positions) == [str(p) for p in range(PARTITIONS)], positions
        assert sum(offset + 1 for offset, _count in positions.values()) == records, positions
        assert extra["table_total_records"] == records
    finally:
        supervisor.kill()
