"""Query-only PostgreSQL and Trino sources (a ``query`` and no ``table``), run from whole specs
against the real servers into Kafka — what admission lets in, the processor must run.

PostgreSQL: a query with ``$1`` is incremental (``$1`` = the last cursor value acknowledged, resumed
from the checkpoint after a restart); without ``$1`` it is re-run every poll. Trino: the query is a
sub-select filtered by ``keyColumn`` and resumed after the last key acknowledged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.spec.loader import parse_spec

from tests.integration.conftest import FAST, read_topic, run_until, trino_run, unique, wait_for

pytestmark = pytest.mark.integration


def kafka_sink(bootstrap: str, topic: str) -> dict[str, Any]:
    return {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic}}


async def ids_in(bootstrap: str, topic: str, expected: int) -> list[int]:
    """The ids on the topic, sorted (the test topics have 4 partitions: no order across them)."""
    return sorted(json.loads(m.value)["id"] for m in await read_topic(bootstrap, topic, expected, timeout=10))


async def test_postgres_incremental_query_without_table_resumes(
    pg: asyncpg.Connection, pg_dsn: str, table: str, topic: str, bootstrap: str, checkpoint_dir: Path
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, kind text)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(i, "x" if i % 2 else "y") for i in range(1, 11)])
    query = f"SELECT id, kind FROM \"{table}\" WHERE kind = 'x' AND ($1::int IS NULL OR id > $1) ORDER BY id"
    spec = {
        "source": {"type": "postgresql", "postgresql": {"connectionString": pg_dsn, "query": query, "pollInterval": 1}},
        "sink": kafka_sink(bootstrap, topic),
    }
    name = unique("pgq")
    checkpoint = checkpoint_dir / f"it.{name}.json"

    async def saved(cursor: int) -> bool:
        return checkpoint.exists() and json.loads(checkpoint.read_text())["cursor"] == [cursor]

    await run_until(spec, lambda: saved(9), name=name)
    assert await ids_in(bootstrap, topic, 5) == [1, 3, 5, 7, 9]
    stored = json.loads(checkpoint.read_text())
    assert stored["identity"]["table"] == ""  # labelled by the query's hash, not a table

    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(11, "x"), (12, "y"), (13, "x")])
    await run_until(spec, lambda: saved(13), name=name)  # a restart: resumes after 9
    assert await ids_in(bootstrap, topic, 7) == [1, 3, 5, 7, 9, 11, 13]


async def test_postgres_plain_query_without_table_reruns(
    pg: asyncpg.Connection, pg_dsn: str, table: str, topic: str, bootstrap: str, checkpoint_dir: Path
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1)', [(1,), (2,)])
    source = {"connectionString": pg_dsn, "query": f'SELECT id FROM "{table}" ORDER BY id', "pollInterval": 1}
    spec = {"source": {"type": "postgresql", "postgresql": source}, "sink": kafka_sink(bootstrap, topic)}
    pipeline = Pipeline.from_spec(parse_spec(spec), namespace="it", name=unique("pgq"), settings=FAST)
    task = asyncio.create_task(pipeline.run())
    try:
        await wait_for(lambda: _processed(pipeline, 4), what="two polls")
    finally:
        pipeline.stop()
        await asyncio.wait_for(task, 30)
    ids = await ids_in(bootstrap, topic, 4)
    assert len(ids) >= 4 and set(ids) == {1, 2} and ids.count(1) >= 2  # every poll emits the result again
    assert not list(checkpoint_dir.glob("*.json"))  # nothing to resume from: no checkpoint


async def _processed(pipeline: Pipeline, count: int) -> bool:
    return pipeline.metrics.processed_total >= count


async def test_trino_query_without_table_resumes_after_key(
    trino_url: str, trino_catalog: str, trino_schema: str, topic: str, bootstrap: str, checkpoint_dir: Path
) -> None:
    items = f'"{trino_catalog}"."{trino_schema}"."items"'
    trino_run(trino_url, f"CREATE TABLE {items} (id bigint, name varchar)")
    trino_run(trino_url, f"INSERT INTO {items} VALUES " + ", ".join(f"({i}, 'n{i}')" for i in range(1, 11)))
    query = f"SELECT id, upper(name) AS shout FROM {items} WHERE id % 2 = 0"
    source = {
        "serverURL": trino_url,
        "catalog": trino_catalog,
        "schema": trino_schema,
        "query": query,
        "pollInterval": 1,
    }
    spec = {"source": {"type": "trino", "trino": source}, "sink": kafka_sink(bootstrap, topic)}
    name = unique("trq")
    checkpoint = checkpoint_dir / f"it.{name}.json"

    async def saved(key: int) -> bool:
        return checkpoint.exists() and json.loads(checkpoint.read_text())["cursor"]["key"] == key

    await run_until(spec, lambda: saved(10), name=name, timeout=60)
    first = sorted((json.loads(m.value) for m in await read_topic(bootstrap, topic, 5, timeout=10)), key=str)
    assert {"id": 2, "shout": "N2"} in first and {"id": 4, "shout": "N4"} in first
    stored = json.loads(checkpoint.read_text())
    assert stored["source"] == "trino" and stored["identity"]["table"] == "query"

    trino_run(trino_url, f"INSERT INTO {items} VALUES (11, 'n11'), (12, 'n12')")
    await run_until(spec, lambda: saved(12), name=name, timeout=60)
    assert await ids_in(bootstrap, topic, 6) == [2, 4, 6, 8, 10, 12]
