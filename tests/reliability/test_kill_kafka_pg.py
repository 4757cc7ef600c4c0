"""Nothing lost under faults (issue #9, CI scale): the real CLI, Kafka → flatten → router → PostgreSQL.

``test_nothing_lost_under_faults`` — N ids (``RELIABILITY_N``, 20,000 in CI) are produced while the
processor runs; each record fans out into two rows (flatten ``items``), a router sends a third of
them to an **upsert** route table, the rest go to an **append** main table, and failures go to an
errors table. Some records are bad on purpose: invalid JSON (``id % 200 == 7``) and a CHECK
violation of the main table (``id % 200 == 11``, ``v = -1``). Meanwhile: ≥ 5 ``kill -9`` at random
moments (each followed by a restart), one Kafka broker restart, one PostgreSQL restart, and for a
while a CHECK constraint on the route table that rejects ``id % 10 == 4``. At the end every id is
classified (written / errors / both / lost); lost must be 0, every bad record must be in the errors
table with its context (error text, stage, partition and offset), the upsert table has no
duplicate; the append table's duplicates are reported.

``test_memory_bounded_while_sink_down`` — PostgreSQL is stopped for ~30 s while records keep coming:
the source pauses (backpressure), the processor's peak RSS stays under ``RSS_BOUND_MIB``, and every
record arrives once PostgreSQL is back.

Each test prints its classification table, and the same as one JSON line (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import require_env
from tests.integration.conftest import create_topic, unique
from tests.reliability.harness import (
    Classification,
    Producer,
    Schedule,
    Supervisor,
    count_children,
    envelope_has_context,
    envelope_id,
    kill_repeatedly,
    pg_execute,
    pg_fetch,
    restart_kafka,
    restart_server_async,
    scale,
    seed,
    wait_accounted,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CHILDREN = 2  # flatten fan-out per id
RSS_BOUND_MIB = 400


def is_malformed(i: int) -> bool:
    return i % 200 == 7


def is_violating(i: int) -> bool:
    return i % 200 == 11


def payload(i: int) -> bytes:
    if is_malformed(i):
        return b'{"id": %d, "v": 1, "items": [{"sub": 0}' % i  # truncated JSON
    tag = "b" if i % 3 == 0 and not is_violating(i) else "a"
    v = -1 if is_violating(i) else i % 97
    return orjson.dumps({"id": i, "v": v, "tag": tag, "items": [{"sub": s} for s in range(CHILDREN)]})


def routed(i: int) -> bool:
    return i % 3 == 0 and not is_violating(i) and not is_malformed(i)


def spec(bootstrap: str, dsn: str, topic: str, name: str, main: str, route: str, errors: str) -> dict[str, Any]:
    return {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": name}},
        "transformations": [
            {"type": "flatten", "flatten": {"field": "items"}},
            {
                "type": "router",
                "router": {
                    "routes": [
                        {
                            "condition": "$.tag == 'b'",
                            "sink": {
                                "type": "postgresql",
                                "postgresql": {
                                    "connectionString": dsn,
                                    "table": route,
                                    "upsertMode": True,
                                    "conflictKey": "id,sub",
                                },
                            },
                        }
                    ]
                },
            },
        ],
        "sink": {"type": "postgresql", "postgresql": {"connectionString": dsn, "table": main}},
        "errors": {
            "type": "postgresql",
            "postgresql": {"connectionString": dsn, "table": errors, "autoCreateTable": True},
        },
    }


async def create_tables(dsn: str, main: str, route: str) -> None:
    await pg_execute(dsn, f'CREATE TABLE "{main}" (id int NOT NULL, sub int NOT NULL, v int CHECK (v >= 0), tag text)')
    await pg_execute(dsn, f'CREATE TABLE "{route}" (id int, sub int, v int, tag text, PRIMARY KEY (id, sub))')


async def drop_tables(dsn: str, *tables: str) -> None:
    for table in tables:
        await pg_execute(dsn, f'DROP TABLE IF EXISTS "{table}"')


async def classify(dsn: str, n: int, main: str, route: str, errors: str, expected: set[int]) -> Classification:
    result = Classification(produced=n, expected_errors=expected)
    main_rows = await pg_fetch(dsn, f'SELECT id, sub FROM "{main}"')
    route_rows = await pg_fetch(dsn, f'SELECT id, sub FROM "{route}"')
    main_ids, main_dups = count_children(main_rows, CHILDREN)
    route_ids, route_dups = count_children(route_rows, CHILDREN)
    result.written = main_ids | route_ids
    result.duplicates = {"main (append)": main_dups, "route (upsert)": route_dups}
    try:
        envelopes = await pg_fetch(dsn, f'SELECT data FROM "{errors}"')
    except Exception as exc:  # not created yet
        if "does not exist" not in str(exc):
            raise
        envelopes = []
    for row in envelopes:
        envelope = json.loads(row["data"])
        i = envelope_id(envelope)
        if i is not None:
            result.in_errors.add(i)
        if not envelope_has_context(envelope):
            result.envelopes_without_context += 1
    return result


async def wait_classified(
    supervisor: Supervisor, dsn: str, n: int, tables: tuple[str, str, str], expected: set[int], timeout: float
) -> Classification:
    return await wait_accounted(lambda: classify(dsn, n, *tables, expected), supervisor, timeout)


@pytest.fixture
def env_ready() -> tuple[str, str]:
    bootstrap, dsn = require_env("DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN")
    return bootstrap, dsn


async def test_nothing_lost_under_faults(env_ready: tuple[str, str], tmp_path: Path) -> None:
    bootstrap, dsn = env_ready
    n, rng_seed = scale(), seed()
    rng = random.Random(rng_seed)
    topic, main, route, errors = unique("rk"), unique("rk_main"), unique("rk_route"), unique("rk_err")
    name = unique("kill").replace("_", "-")
    await create_topic(bootstrap, topic)
    await create_tables(dsn, main, route)
    expected = {i for i in range(n) if is_malformed(i) or is_violating(i)}
    supervisor = Supervisor(spec(bootstrap, dsn, topic, name, main, route, errors), tmp_path, name)
    producer = Producer(bootstrap, topic, n, payload)
    schedule = Schedule(producer.seconds * 1.25)
    note = schedule.note

    may_kill = asyncio.Event()
    may_kill.set()

    async def servers() -> None:  # concurrently with the kills
        await schedule.at(0.2)
        await restart_kafka(schedule, producer)
        await schedule.at(0.45)
        await pg_execute(dsn, f'ALTER TABLE "{route}" ADD CONSTRAINT rk_window CHECK (id % 10 <> 4) NOT VALID')
        note("route CHECK added")
        # open until the route table has refused records (a restarted consumer first waits out the
        # killed one's session, ~10 s), at least 8 s, at most 60 s; no kills meanwhile: it must see
        # records written
        may_kill.clear()
        opened = time.monotonic()
        while time.monotonic() - opened < 60:
            await asyncio.sleep(1)
            refused = (await classify(dsn, n, main, route, errors, expected)).unexpected_errors
            if refused and time.monotonic() - opened >= 8:
                break
        await pg_execute(dsn, f'ALTER TABLE "{route}" DROP CONSTRAINT rk_window')
        note("route CHECK dropped")
        may_kill.set()
        await schedule.at(0.8)
        note("postgres down")
        seconds = await restart_server_async("postgres", down_seconds=3)
        note("postgres up", seconds=round(seconds, 1))

    async def faults() -> None:  # six kill -9 at random moments, each followed by a restart
        moments = [rng.uniform(0.05, 0.95) for _ in range(6)]
        await asyncio.gather(kill_repeatedly(supervisor, schedule, producer, moments, 6, may_kill), servers())

    try:
        supervisor.start()
        producing = asyncio.create_task(producer.run())
        await faults()
        await producing
        note("produced", retries=producer.retries)
        result = await wait_classified(supervisor, dsn, n, (main, route, errors), expected, timeout=180)
        note("classified")
        code = await supervisor.stop()
        result = await classify(dsn, n, main, route, errors, expected)
        extra = {
            "seed": rng_seed,
            "check_window_errors": len(result.unexpected_errors),
            **supervisor.figures(),
            **schedule.figures(),
        }
        result.print("kill -9 / kafka + postgres restarts / check window", extra)
        assert code == 0, supervisor.logs()[-8000:]
        assert supervisor.kills >= 5
        assert not result.lost, sorted(result.lost)[:50]
        assert not result.missing_expected_errors, sorted(result.missing_expected_errors)[:50]
        assert result.envelopes_without_context == 0
        # the only other records in the errors table: route records refused during the CHECK window
        assert all(routed(i) and i % 10 == 4 for i in result.unexpected_errors), sorted(result.unexpected_errors)[:50]
        assert result.unexpected_errors, "the CHECK window refused nothing"
        assert not (result.written & expected)
        assert result.duplicates["route (upsert)"] == 0
    finally:
        supervisor.kill()
        await drop_tables(dsn, main, route, errors)


async def test_memory_bounded_while_sink_down(env_ready: tuple[str, str], tmp_path: Path) -> None:
    bootstrap, dsn = env_ready
    n = min(scale(), 20_000)
    topic, main, route, errors = unique("rm"), unique("rm_main"), unique("rm_route"), unique("rm_err")
    name = unique("mem").replace("_", "-")
    await create_topic(bootstrap, topic)
    await create_tables(dsn, main, route)
    expected = {i for i in range(n) if is_malformed(i) or is_violating(i)}
    supervisor = Supervisor(spec(bootstrap, dsn, topic, name, main, route, errors), tmp_path, name)
    producer = Producer(bootstrap, topic, n, payload)
    started = time.monotonic()
    try:
        supervisor.start()
        producing = asyncio.create_task(producer.run())
        deadline = time.monotonic() + 60
        while len((await classify(dsn, n, main, route, errors, expected)).written) < 1000:  # it runs
            assert time.monotonic() < deadline, f"no rows after 60 s\n{supervisor.logs()[-8000:]}"
            await asyncio.sleep(0.5)
        rss_before = supervisor.peak_rss_kib
        sent_at_stop = producer.sent
        down = await restart_server_async("postgres", down_seconds=30)
        sent_while_down = producer.sent - sent_at_stop
        await producing
        result = await wait_classified(supervisor, dsn, n, (main, route, errors), expected, timeout=180)
        code = await supervisor.stop()
        result = await classify(dsn, n, main, route, errors, expected)
        peak = supervisor.peak_rss_kib / 1024
        result.print(
            "postgresql down ~30 s (backpressure)",
            {
                "postgres_down_seconds": round(down, 1),
                "produced_while_down": sent_while_down,
                "rss_before_mib": round(rss_before / 1024, 1),
                "peak_rss_mib": round(peak, 1),
                "crash_restarts": supervisor.crash_restarts,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        assert code == 0, supervisor.logs()[-8000:]
        assert sent_while_down > 0, "nothing produced while the sink was down"
        assert peak < RSS_BOUND_MIB
        assert supervisor.crash_restarts == 0, supervisor.logs()[-8000:]
        assert not result.lost
        assert not result.missing_expected_errors
        assert result.duplicates["route (upsert)"] == 0
    finally:
        supervisor.kill()
        await drop_tables(dsn, main, route, errors)
