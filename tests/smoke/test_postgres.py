"""Smoke test of the local PostgreSQL: the `dataflow` role logs in over TCP and reads back what it wrote."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.smoke


async def test_create_insert_select(postgres_dsn: str) -> None:
    table = f"smoke_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        await conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, doc jsonb)")
        await conn.executemany(
            f"INSERT INTO {table} (id, name, doc) VALUES ($1, $2, $3::jsonb)",
            [(i, f"n{i}", f'{{"i": {i}}}') for i in range(100)],
        )
        rows = await conn.fetch(f"SELECT id, name, doc->>'i' AS i FROM {table} WHERE id >= 95 ORDER BY id")
        assert [(r["id"], r["name"], r["i"]) for r in rows] == [(i, f"n{i}", str(i)) for i in range(95, 100)]
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 100
        # COPY is how the sink bulk-loads
        await conn.copy_records_to_table(table, records=[(1000, "copied", None)], columns=["id", "name", "doc"])
        assert await conn.fetchval(f"SELECT name FROM {table} WHERE id = 1000") == "copied"
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'dup')")
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def test_server_settings(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_user") == "dataflow"
        assert await conn.fetchval("SELECT current_database()") == "dataflow"
        assert int(await conn.fetchval("SHOW max_connections")) >= 200
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()


async def test_concurrent_connections(postgres_dsn: str) -> None:
    pool = await asyncpg.create_pool(postgres_dsn, min_size=10, max_size=10, timeout=10)
    try:
        pids = await asyncio.gather(*(pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.2)") for _ in range(10)))
        assert len(set(pids)) == 10
    finally:
        await pool.close()


async def test_wrong_password_is_refused(postgres_dsn: str) -> None:
    bad = postgres_dsn.replace("dataflow:dataflow@", "dataflow:wrong@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(bad, timeout=10)
