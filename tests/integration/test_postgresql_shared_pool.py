"""One DataFlow's PostgreSQL sinks with the same connection string share one small pool: a router
of many routes to one database must not open a connection per route (admitted specs could open 513).
Counted on the real server in ``pg_stat_activity`` by a unique ``application_name``."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from dataflow_processor.connectors.postgresql import SHARED_POOL_SIZE

from tests.integration.conftest import count_rows, produce, run_until, unique, wait_for

pytestmark = pytest.mark.integration

ROUTES = 6


async def test_route_sinks_to_one_database_share_a_pool(
    pg: asyncpg.Connection, pg_dsn: str, topic: str, bootstrap: str
) -> None:
    app = unique("pool")
    dsn = pg_dsn + ("&" if "?" in pg_dsn else "?") + f"application_name={app}"  # asyncpg: a server setting
    tables = [unique("it") for _ in range(ROUTES + 2)]  # routes, main, errors

    def sink(table: str) -> dict[str, Any]:
        return {"type": "postgresql", "postgresql": {"connectionString": dsn, "table": table, "autoCreateTable": True}}

    routes = [{"condition": f"$.k == '{i}'", "sink": sink(tables[i])} for i in range(ROUTES)]
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": unique("g")}},
        "transformations": [{"type": "router", "router": {"routes": routes}}],
        "sink": sink(tables[ROUTES]),
        "errors": sink(tables[ROUTES + 1]),
    }
    await produce(bootstrap, topic, [{"k": str(i % (ROUTES + 1)), "n": i} for i in range(70)])
    most = 0

    async def all_written() -> bool:
        nonlocal most
        connections = await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
        most = max(most, connections)
        counts = [await count_rows(pg, t) for t in tables[: ROUTES + 1]]
        return sum(counts) == 70

    try:
        await run_until(spec, all_written, timeout=60)
        assert [await count_rows(pg, t) for t in tables[: ROUTES + 1]] == [10] * (ROUTES + 1)
        assert 1 <= most <= SHARED_POOL_SIZE, f"{most} connections for {ROUTES + 2} sinks"

        async def closed() -> bool:  # the last sink to close closed the pool
            return await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app) == 0

        await wait_for(closed, timeout=10, what="the pool's connections to end")
    finally:
        for table in tables:
            await pg.execute(f'DROP TABLE IF EXISTS "{table}"')
