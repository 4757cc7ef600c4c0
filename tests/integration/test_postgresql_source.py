"""PostgreSQL source against the real PostgreSQL: polling by key, by change-tracking column, custom
queries (plain and incremental), rawMode, JSON forms of types, and resuming from the durable
checkpoint after a restart (file store; the stores themselves: processor/tests/test_checkpoint.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.postgresql import PostgresSource
from dataflow_processor.spec.connectors import PostgresSourceConfig

from tests.integration.conftest import collect

pytestmark = pytest.mark.integration


def make_source(dsn: str, name: str = "pgsrc", **config: Any) -> PostgresSource:
    model = PostgresSourceConfig.model_validate({"connectionString": dsn, "pollInterval": 1, **config})
    return PostgresSource(model, ConnectorContext("it", name, "source"))



async def test_polls_by_id_and_resumes_from_checkpoint(
    pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(i, f"n{i}") for i in range(1, 2501)])
    # readBatchSize 1000: three pages back to back
    first = await collect(make_source(pg_dsn, table=table), 2500, settle=0.3, timeout=30.0)
    assert [r.value["id"] for r in first.records] == list(range(1, 2501))  # type: ignore[index]
    assert first.records[0].metadata == {"table": table, "id": 1}
    stored = json.loads((checkpoint_dir / "it.pgsrc.json").read_text())
    assert stored["cursor"] == [2500]

    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(i, f"n{i}") for i in range(2501, 2551)])
    # settle > one pollInterval: nothing more may come
    second = await collect(make_source(pg_dsn, table=table), 50, settle=1.5, timeout=30.0)
    assert [r.value["id"] for r in second.records] == list(range(2501, 2551))  # type: ignore[index]


async def test_change_tracking_column_reemits_updated_rows(
    pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL)')
    await pg.executemany(
        f"INSERT INTO \"{table}\" VALUES ($1, 'a', '2026-01-01T00:00:00Z')",  # equal timestamps: id breaks ties
        [(i,) for i in range(1, 6)],
    )
    config: dict[str, Any] = {"table": table, "changeTrackingColumn": "updated_at", "readBatchSize": 2}
    first = await collect(make_source(pg_dsn, **config), 5, settle=0.3, timeout=30.0)
    assert [r.value["id"] for r in first.records] == [1, 2, 3, 4, 5]  # type: ignore[index]
    await pg.execute(f"UPDATE \"{table}\" SET v = 'b', updated_at = '2026-01-02T00:00:00Z' WHERE id IN (2, 4)")
    second = await collect(make_source(pg_dsn, **config), 2, settle=1.5, timeout=30.0)
    assert [(r.value["id"], r.value["v"]) for r in second.records] == [(2, "b"), (4, "b")]  # type: ignore[index]
    assert second.records[0].value["updated_at"] == "2026-01-02T00:00:00+00:00"  # type: ignore[index]


async def test_incremental_custom_query(pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, kind text)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(i, "x" if i % 2 else "y") for i in range(1, 21)])
    query = f"SELECT id, kind FROM \"{table}\" WHERE kind = 'x' AND ($1::int IS NULL OR id > $1) ORDER BY id LIMIT 4"
    first = await collect(make_source(pg_dsn, table=table, query=query), 10, settle=0.3, timeout=30.0)
    assert [r.value["id"] for r in first.records] == list(range(1, 21, 2))  # type: ignore[index]
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2)', [(21, "x"), (22, "y"), (23, "x")])
    second = await collect(make_source(pg_dsn, table=table, query=query), 2, settle=1.5, timeout=30.0)
    assert [r.value["id"] for r in second.records] == [21, 23]  # type: ignore[index]


async def test_plain_custom_query_reruns_every_poll(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1)', [(1,), (2,)])
    query = f'SELECT id FROM "{table}" ORDER BY id'
    sink = await collect(make_source(pg_dsn, table=table, query=query), 4, settle=0.0, timeout=30.0)
    assert [r.value["id"] for r in sink.records[:4]] == [1, 2, 1, 2]  # type: ignore[index]


async def test_a_query_without_limit_is_read_in_pages(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    """A custom query's result is streamed through a cursor readBatchSize rows at a time: a query
    without LIMIT over a large table must not be held in memory whole."""
    await pg.execute(f'CREATE TABLE "{table}" (id int)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1)', [(i,) for i in range(1, 1001)])
    source = make_source(pg_dsn, table=table, query=f'SELECT id FROM "{table}" ORDER BY id', readBatchSize=100)
    await source.connect()
    try:
        batches = source.batches(BatchPolicy(max_records=10_000, linger_seconds=0.01))
        assert isinstance(batches, AsyncGenerator)
        sizes = [len(await batches.__anext__()) for _ in range(10)]
        assert sizes == [100] * 10  # one poll, ten pages
        await batches.aclose()
    finally:
        await source.close()


async def test_raw_mode_and_json_forms_of_types(
    pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path
) -> None:
    await pg.execute(
        f"""CREATE TABLE "{table}" (id int PRIMARY KEY, amount numeric(8,2), whole numeric, at timestamptz,
        day date, doc jsonb, u uuid, b bytea, tags text[])"""
    )
    await pg.execute(
        f"""INSERT INTO "{table}" VALUES (1, 12.50, 7, '2026-03-04T05:06:07Z', '2026-03-04', '{{"a": [1, null]}}',
        '6f1c4bd2-8e4b-4f53-9a39-5b1f7f1c0a11', '\\x6869', '{{p,q}}')"""
    )
    sink = await collect(make_source(pg_dsn, table=table, rawMode=True), 1, settle=0.0, timeout=30.0)
    assert sink.records[0].value == {
        "value": {
            "id": 1,
            "amount": "12.50",  # numeric: exact text, scale kept (connectors/values.py)
            "whole": "7",
            "at": "2026-03-04T05:06:07+00:00",
            "day": "2026-03-04",
            "doc": {"a": [1, None]},
            "u": "6f1c4bd2-8e4b-4f53-9a39-5b1f7f1c0a11",
            "b": "aGk=",
            "tags": ["p", "q"],
        },
        "_metadata": {"table": table, "id": 1},
    }


async def test_missing_key_column_is_a_start_error(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (code text)')
    source = make_source(pg_dsn, table=table)
    with pytest.raises(ValueError, match="no column 'id'"):
        await source.connect()
    await source.close()


async def test_checkpoint_of_another_configuration_is_ignored(
    pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, seq int)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $1)', [(i,) for i in range(1, 4)])
    await collect(make_source(pg_dsn, table=table), 3, settle=0.3, timeout=30.0)
    again = await collect(make_source(pg_dsn, table=table, keyColumn="seq"), 3, settle=0.3, timeout=30.0)
    assert [r.value["id"] for r in again.records] == [1, 2, 3]  # type: ignore[index]


async def test_checkpoint_of_the_previous_version_is_resumed(
    pg: asyncpg.Connection, pg_dsn: str, table: str, checkpoint_dir: Path
) -> None:
    """An in-place upgrade: the document the previous version wrote (its own shape) still resumes,
    and the next save writes the one checkpoint record."""
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY)')
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1)', [(i,) for i in range(1, 8)])
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    old = {"identity": {"source": "postgresql", "table": table, "columns": ["id"]}, "cursor": [4], "savedAt": "x"}
    (checkpoint_dir / "it.pgsrc.json").write_text(json.dumps(old))
    sink = await collect(make_source(pg_dsn, table=table), 3, settle=0.3, timeout=30.0)
    assert [r.value["id"] for r in sink.records] == [5, 6, 7]  # type: ignore[index]
    stored = json.loads((checkpoint_dir / "it.pgsrc.json").read_text())
    assert stored["source"] == "postgresql" and stored["identity"] == {"table": table, "columns": ["id"]}
    assert stored["cursor"] == [7]
