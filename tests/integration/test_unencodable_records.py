"""A record nested deeper than JSON encoding allows (orjson parses 1,024 levels, encodes 254),
from the real Kafka into the real PostgreSQL: the sink cannot write it, and it must reach the
errors topic as its raw text — not be acknowledged and lost."""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.integration.conftest import count_rows, create_topic, produce, read_topic, run_until, unique

pytestmark = pytest.mark.integration

DEEP = b'{"a":' * 300 + b"1" + b"}" * 300


async def test_too_deep_record_reaches_the_errors_topic_as_text(
    pg: asyncpg.Connection, pg_dsn: str, table: str, topic: str, bootstrap: str
) -> None:
    errors_topic = unique("it-errors")
    await create_topic(bootstrap, errors_topic, partitions=1)
    await pg.execute(f'CREATE TABLE "{table}" (id bigserial PRIMARY KEY, data jsonb NOT NULL)')
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": unique("g")}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": pg_dsn, "table": table}},
        "errors": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": errors_topic}},
    }
    await produce(bootstrap, topic, [{"n": 1}, DEEP, {"n": 2}], partition=0)
    envelopes: list[dict] = []

    async def done() -> bool:
        envelopes[:] = [json.loads(m.value) for m in await read_topic(bootstrap, errors_topic, 1, timeout=1)]
        return await count_rows(pg, table) == 2 and len(envelopes) == 1

    await run_until(spec, done, timeout=60)
    [envelope] = envelopes
    assert envelope["original_message"] == {"original_data": DEEP.decode()}
    assert envelope["error"]["stage"] == "write"
