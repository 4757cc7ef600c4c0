"""Trino source against the real Trino: polling by an increasing key, the durable checkpoint,
custom queries, and the JSON form of Trino's types."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.trino import TrinoSource
from dataflow_processor.pipeline import PipelineSettings
from dataflow_processor.spec.connectors import TrinoSourceConfig

from tests.integration.conftest import collect, trino_run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("checkpoint_dir")]

PAGES_OF_7 = PipelineSettings(batch_size=7, linger_seconds=0.01, commit_interval=0.05, retry_initial=0.05)


def source_config(url: str, catalog: str, schema: str, table: str, **extra: object) -> TrinoSourceConfig:
    return TrinoSourceConfig.model_validate(
        {"serverURL": url, "catalog": catalog, "schema": schema, "table": table, "pollInterval": 1, **extra}
    )



def insert(url: str, catalog: str, schema: str, ids: range) -> None:
    values = ", ".join(f"({i}, 'name {i}')" for i in ids)
    trino_run(url, f'INSERT INTO "{catalog}"."{schema}"."items" VALUES {values}')


async def test_each_row_once_across_polls_and_restarts(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."items" (id bigint, name varchar)')
    insert(trino_url, trino_catalog, trino_schema, range(1, 31))
    config = source_config(trino_url, trino_catalog, trino_schema, "items")
    context = ConnectorContext("it", "trino-src", "source")

    first = TrinoSource(config, context)
    sink = await collect(first, 30, settings=PAGES_OF_7)
    assert [r.value["id"] for r in sink.records] == list(range(1, 31))  # type: ignore[index]
    assert sink.records[0].value == {"id": 1, "name": "name 1"}
    assert dict(sink.records[0].metadata) == {
        "catalog": trino_catalog,
        "schema": trino_schema,
        "table": "items",
        "id": 1,
    }
    assert first.polls >= 6  # pages of 7 read back to back, then timed polls

    insert(trino_url, trino_catalog, trino_schema, range(31, 46))
    second = TrinoSource(config, context)  # a restart: resumes from the durable checkpoint
    sink = await collect(second, 15, settings=PAGES_OF_7)
    assert [r.value["id"] for r in sink.records] == list(range(31, 46))  # type: ignore[index]

    third = TrinoSource(config, context)
    await third.connect()
    assert third.read_cursor == {"key": 45, "type": "bigint"}  # read from the checkpoint
    rows_while_running = range(46, 50)
    task = asyncio.create_task(collect(third, 4))
    await asyncio.sleep(1.2)
    insert(trino_url, trino_catalog, trino_schema, rows_while_running)
    sink = await task
    assert [r.value["id"] for r in sink.records] == list(rows_while_running)  # type: ignore[index]


async def test_types_become_json_friendly(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    trino_run(
        trino_url,
        f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."typed" AS SELECT * FROM (VALUES ('
        "BIGINT '1', DECIMAL '12.50', DATE '2024-05-06', TIMESTAMP '2024-05-06 07:08:09.123456', "
        "TIMESTAMP '2024-05-06 07:08:09.500 +02:00', TIME '10:11:12', X'6869', "
        "UUID '12345678-1234-5678-1234-567812345678', ARRAY[1, 2], MAP(ARRAY['a'], ARRAY[1]), "
        "CAST(ROW(1, 'x') AS ROW(n bigint, s varchar)), JSON '{\"k\": [1]}', nan(), REAL '1.5', true)"
        ") AS t(id, dec, d, ts, tz, tm, bin, u, arr, mp, rw, js, nn, rl, ok)",
    )
    source = TrinoSource(
        source_config(trino_url, trino_catalog, trino_schema, "typed"), ConnectorContext("it", "t", "s")
    )
    await source.connect()
    batch = await source.batches(BatchPolicy(10, 0.01)).__anext__()
    await source.close()
    assert batch[0].value == {
        "id": 1,
        "dec": "12.50",
        "d": "2024-05-06",
        "ts": "2024-05-06T07:08:09.123456",
        "tz": "2024-05-06T07:08:09.500000+02:00",
        "tm": "10:11:12",
        "bin": "aGk=",
        "u": "12345678-1234-5678-1234-567812345678",
        "arr": [1, 2],
        "mp": {"a": 1},
        "rw": {"n": 1, "s": "x"},
        "js": '{"k":[1]}',
        "nn": "nan",
        "rl": 1.5,
        "ok": True,
    }


async def test_custom_query_is_filtered_by_key(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."items" (id bigint, name varchar)')
    insert(trino_url, trino_catalog, trino_schema, range(1, 21))
    query = f'SELECT id, upper(name) AS shout FROM "{trino_catalog}"."{trino_schema}"."items" WHERE id % 2 = 0'
    config = source_config(trino_url, trino_catalog, trino_schema, "items", query=query)
    context = ConnectorContext("it", "trino-q", "source")
    sink = await collect(TrinoSource(config, context), 10, settings=PAGES_OF_7)
    assert [r.value for r in sink.records][:2] == [{"id": 2, "shout": "NAME 2"}, {"id": 4, "shout": "NAME 4"}]
    assert [r.value["id"] for r in sink.records] == list(range(2, 21, 2))  # type: ignore[index]
    insert(trino_url, trino_catalog, trino_schema, range(21, 25))
    sink = await collect(TrinoSource(config, context), 2, settings=PAGES_OF_7)
    assert [r.value["id"] for r in sink.records] == [22, 24]  # type: ignore[index]


async def test_custom_query_without_key_reruns_every_poll(
    trino_url: str, trino_catalog: str, trino_schema: str
) -> None:
    query = "SELECT 1 AS one"
    config = source_config(trino_url, trino_catalog, trino_schema, "unused", query=query, keyColumn="")
    source = TrinoSource(config, ConnectorContext("it", "trino-rerun", "source"))
    await source.connect()
    batches = source.batches(BatchPolicy(10, 0.01))
    assert [r.value for r in await batches.__anext__()] == [{"one": 1}]
    assert [r.value for r in await batches.__anext__()] == [{"one": 1}]  # next poll, same row again
    await source.close()


async def test_checkpoint_of_the_previous_version_is_resumed(
    trino_url: str, trino_catalog: str, trino_schema: str, checkpoint_dir: Path
) -> None:
    """An in-place upgrade: the previous version's document (``{"trino": …, "key", "keyType"}``) resumes."""
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."items" (id bigint, name varchar)')
    insert(trino_url, trino_catalog, trino_schema, range(1, 11))
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    old = {"trino": f"{trino_catalog}.{trino_schema}.items||id", "key": 6, "keyType": "bigint"}
    (checkpoint_dir / "it.trino-old.json").write_text(json.dumps(old))
    config = source_config(trino_url, trino_catalog, trino_schema, "items")
    sink = await collect(TrinoSource(config, ConnectorContext("it", "trino-old", "source")), 4, settings=PAGES_OF_7)
    assert [r.value["id"] for r in sink.records] == [7, 8, 9, 10]  # type: ignore[index]
    stored = json.loads((checkpoint_dir / "it.trino-old.json").read_text())
    assert stored["source"] == "trino" and stored["cursor"] == {"key": 10, "type": "bigint"}
