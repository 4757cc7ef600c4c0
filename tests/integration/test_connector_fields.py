"""The Go project's current PostgreSQL and Trino fields against the real servers: ``orderByColumn``
and ``readBatchSize`` paging (both sources), ``upsertStrategy: ifNewer`` with
``upsertVersionColumn``, ``softDeleteColumn``, and Trino ``upsertMode`` (MERGE) refused at start by
a catalog whose connector cannot MERGE (the environment's ``memory``).

The sink tests call ``write`` with hand-made batches, so what one batch holds is exact; one test
runs a whole pipeline so the records' metadata is seen to reach the sink.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.connectors.postgresql import PostgresSink, PostgresSource
from dataflow_processor.connectors.trino import TrinoSink, TrinoSource
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.records import Position, Record
from dataflow_processor.spec.connectors import (
    PostgresSinkConfig,
    PostgresSourceConfig,
    TrinoSinkConfig,
    TrinoSourceConfig,
)
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import FAST, collect, trino_run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("checkpoint_dir")]

DELETE = {"operation": "delete"}


def records(*values: dict[str, Any], metadata: dict[str, Any] | None = None) -> list[Record]:
    return [Record(v, metadata=metadata or {}, position=Position(0, i)) for i, v in enumerate(values)]



# ----------------------------------------------------------------------------- PostgreSQL source


async def test_postgresql_order_by_column_orders_pages_and_labels_records(
    pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    """orderByColumn (the Go name of keyColumn) decides the order, the pages and metadata id."""
    await pg.execute(f'CREATE TABLE "{table}" (id int, price_id bigint PRIMARY KEY, name text)')
    # inserted out of order, and `id` runs the other way: ordering by id would reverse them
    order = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    await pg.executemany(f'INSERT INTO "{table}" VALUES ($1, $2, $3)', [(100 - p, p, f"p{p}") for p in order])
    config = PostgresSourceConfig.model_validate(
        {"connectionString": pg_dsn, "table": table, "orderByColumn": "price_id", "readBatchSize": 3,
         "pollInterval": 1}
    )
    source = PostgresSource(config, ConnectorContext("it", "pg-order-by", "source"))
    sink = await collect(source, 10)
    assert [r.value["price_id"] for r in sink.records] == list(range(1, 11))  # type: ignore[index]
    assert sink.records[0].metadata == {"table": table, "id": 1}
    # pages of 3: 3+3+3+1 read back to back in the first round, then timed polls
    assert source.polls >= 4
    await pg.execute(f'INSERT INTO "{table}" VALUES (0, 11, $1)', "p11")
    later = await collect(PostgresSource(config, ConnectorContext("it", "pg-order-by", "source")), 1)
    assert [r.value["price_id"] for r in later.records] == [11]  # type: ignore[index]  # resumed after price_id 10


# ----------------------------------------------------------------------------- PostgreSQL sink: ifNewer


def pg_sink(dsn: str, table: str, **fields: Any) -> PostgresSink:
    config = PostgresSinkConfig.model_validate({"connectionString": dsn, "table": table, **fields})
    return PostgresSink(config, ConnectorContext("it", "pg-fields", "sink"))


async def table_rows(pg: asyncpg.Connection, table: str, columns: str = "*") -> dict[Any, tuple[Any, ...]]:
    return {row[0]: tuple(row)[1:] for row in await pg.fetch(f'SELECT {columns} FROM "{table}" ORDER BY 1')}


async def test_if_newer_only_a_greater_version_replaces_a_row(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text, version bigint)')
    await pg.execute(f'INSERT INTO "{table}" VALUES (1, $1, 5), (2, $2, NULL)', "stored", "no version")
    sink = pg_sink(pg_dsn, table, upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="version")
    await sink.connect()
    try:
        result = await sink.write(
            records(
                {"id": 1, "name": "older", "version": 4},
                {"id": 1, "name": "equal", "version": 5},
                {"id": 2, "name": "any version beats NULL", "version": 1},
                {"id": 3, "name": "v2", "version": 2},
                {"id": 3, "name": "v7", "version": 7},
                {"id": 3, "name": "v7 again", "version": 7},  # equal to the batch's greatest: first wins
                {"id": 3, "name": "v6", "version": 6},
                {"id": 4, "name": "no version"},
                {"id": 5, "name": "null version", "version": None},
            )
        )
        assert [f.index for f in result.failures] == [7, 8]
        assert all("upsertVersionColumn 'version' is missing or null" in f.error for f in result.failures)
        assert await table_rows(pg, table) == {
            1: ("stored", 5),
            2: ("any version beats NULL", 1),
            3: ("v7", 7),
        }
        # 2 for id 1 kept out by the row, 3 for id 3 by the batch's greatest version
        assert sink.stale_records == 5

        result = await sink.write(records({"id": 1, "name": "newer", "version": 6}, {"id": 3, "name": "x", "version": 7}))
        assert result.failures == []
        assert await table_rows(pg, table) == {1: ("newer", 6), 2: ("any version beats NULL", 1), 3: ("v7", 7)}
        assert sink.stale_records == 6
    finally:
        await sink.close()


async def test_if_newer_with_timestamps_in_the_document_layout(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    """The Go project's shape: a jsonb data table with an updated_at column, RFC 3339 versions."""
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, data jsonb NOT NULL, updated_at timestamptz)')
    sink = pg_sink(pg_dsn, table, upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="updated_at")
    await sink.connect()
    try:
        await sink.write(records({"id": 1, "n": 1, "updated_at": "2024-05-06T10:00:00Z"}))
        await sink.write(
            records(
                {"id": 1, "n": 2, "updated_at": "2024-05-06T09:59:59Z"},  # older
                {"id": 1, "n": 3, "updated_at": "2024-05-06T12:00:00+01:00"},  # = 11:00Z: newer
            )
        )
        row = await pg.fetchrow(f'SELECT data, updated_at FROM "{table}" WHERE id = 1')
        assert row["updated_at"] == dt.datetime(2024, 5, 6, 11, tzinfo=dt.UTC)
        assert '"n": 3' in row["data"]
    finally:
        await sink.close()


async def test_if_newer_refuses_a_version_column_the_table_lacks(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text, version text)')
    for column, expected in [("nope", "has no column 'nope'"), ("version", "is text; a version is a number")]:
        sink = pg_sink(pg_dsn, table, upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn=column)
        with pytest.raises(ValueError, match=f"upsertVersionColumn: .*{expected}"):
            await sink.connect()
        await sink.close()


# ----------------------------------------------------------------------------- PostgreSQL sink: soft delete


async def test_soft_delete_marks_rows_in_batch_order(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text, deleted_at timestamptz)')
    await pg.execute(f'INSERT INTO "{table}" VALUES (1, $1), (2, $2)', "one", "two")
    sink = pg_sink(pg_dsn, table, upsertMode=True, softDeleteColumn="deleted_at")
    await sink.connect()
    started = await pg.fetchval("SELECT now()")
    try:
        batch = [
            Record({"id": 1, "name": "one"}, metadata=DELETE, position=Position(0, 0)),
            Record({"id": 3, "name": "three"}, metadata={"operation": "insert"}, position=Position(0, 1)),
            Record({"id": 3, "name": "three"}, metadata=DELETE, position=Position(0, 2)),  # after its insert
            Record({"id": 9, "name": "never written"}, metadata=DELETE, position=Position(0, 3)),
            Record({"name": "no key"}, metadata=DELETE, position=Position(0, 4)),
        ]
        result = await sink.write(batch)
        assert [f.index for f in result.failures] == [4]
        assert "field 'id' is missing or null" in result.failures[0].error
        rows = await table_rows(pg, table)
        assert set(rows) == {1, 2, 3}  # a delete writes no row of its own (9 is not there)
        assert rows[1][1] >= started and rows[3][1] >= started and rows[2][1] is None
        assert rows[1][0] == "one"  # a soft delete changes the mark only
        assert sink.deletes_unmatched == 1

        # a later write of a deleted key makes the row live again
        await sink.write(records({"id": 1, "name": "back"}))
        assert (await table_rows(pg, table))[1] == ("back", None)
    finally:
        await sink.close()


async def test_soft_delete_through_the_pipeline_with_a_flag_and_if_newer(
    pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    """Metadata operation=delete reaches the sink through a pipeline; a boolean column is a flag;
    under ifNewer a delete applies to a row whose version is not newer than the delete's."""
    await pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v bigint, gone boolean NOT NULL DEFAULT false)')
    await pg.execute(f'INSERT INTO "{table}" VALUES (1, 3), (2, 8)')
    sink = pg_sink(pg_dsn, table, upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="v",
                   softDeleteColumn="gone")
    source = MemorySource(
        [
            Record({"id": 1, "v": 3}, metadata=DELETE, position=Position(0, 0)),  # same version: deleted
            Record({"id": 2, "v": 5}, metadata=DELETE, position=Position(0, 1)),  # a stale delete: row is v8
            Record({"id": 3, "v": 1}, metadata={"operation": "insert"}, position=Position(0, 2)),
        ]
    )
    errors = MemorySink()
    pipeline = Pipeline(source=source, chain=TransformChain.from_spec([]), sink=sink, errors_sink=errors, settings=FAST)
    await pipeline.run()
    assert errors.records == []
    assert await table_rows(pg, table) == {1: (3, True), 2: (8, False), 3: (1, False)}


async def test_auto_create_table_adds_the_version_and_soft_delete_columns(
    pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    sink = pg_sink(pg_dsn, table, autoCreateTable=True, upsertMode=True, upsertStrategy="ifNewer",
                   upsertVersionColumn="updated_at", softDeleteColumn="deleted_at")
    await sink.connect()
    try:
        types = dict(
            await pg.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
            )
        )
        assert types["updated_at"] == types["deleted_at"] == "timestamp with time zone"
        await sink.write(records({"id": 1, "a": 1, "updated_at": "2024-01-01T00:00:00Z"}))
        await sink.write(records({"id": 1, "updated_at": "2024-01-01T00:00:00Z"}, metadata=DELETE))
        assert await pg.fetchval(f'SELECT deleted_at IS NOT NULL FROM "{table}" WHERE id = 1') is True
    finally:
        await sink.close()


# ----------------------------------------------------------------------------- Trino


async def test_trino_order_by_column_and_read_batch_size(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    name = f'"{trino_catalog}"."{trino_schema}"."prices"'
    trino_run(trino_url, f"CREATE TABLE {name} (id bigint, price_id bigint, name varchar)")
    order = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    trino_run(trino_url, f"INSERT INTO {name} VALUES " + ", ".join(f"({100 - p}, {p}, 'p{p}')" for p in order))
    config = TrinoSourceConfig.model_validate(
        {"serverURL": trino_url, "catalog": trino_catalog, "schema": trino_schema, "table": "prices",
         "orderByColumn": "price_id", "readBatchSize": 4, "pollInterval": 1}
    )
    source = TrinoSource(config, ConnectorContext("it", "trino-order-by", "source"))
    sink = await collect(source, 10)
    assert [r.value["price_id"] for r in sink.records] == list(range(1, 11))  # type: ignore[index]
    assert sink.records[0].metadata["id"] == 1
    # FAST batches are 200 records: without readBatchSize one query would read all 10 rows
    assert source.polls >= 3


async def test_trino_upsert_mode_is_refused_at_start_by_a_catalog_without_merge(
    trino_url: str, trino_catalog: str, trino_schema: str
) -> None:
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."target" (id bigint, name varchar)')
    fields = {"serverURL": trino_url, "catalog": trino_catalog, "schema": trino_schema, "table": "target"}
    sink = TrinoSink(
        TrinoSinkConfig.model_validate({**fields, "upsertMode": True, "conflictKey": "id"}),
        ConnectorContext("it", "trino-merge", "sink"),
    )
    with pytest.raises(RuntimeError, match=f"upsertMode: catalog '{trino_catalog}' cannot MERGE"):
        await sink.connect()
    await sink.close()
    keyless = TrinoSink(
        TrinoSinkConfig.model_validate({**fields, "upsertMode": True, "conflictKey": "sku"}),
        ConnectorContext("it", "trino-merge", "sink"),
    )
    with pytest.raises(RuntimeError, match=r"conflictKey: trino table .* has no column 'sku'"):
        await keyless.connect()
    await keyless.close()
    # without upsertMode the same table takes INSERTs as before
    plain = TrinoSink(TrinoSinkConfig.model_validate(fields), ConnectorContext("it", "trino-merge", "sink"))
    await plain.connect()
    try:
        assert (await plain.write(records({"id": 1, "name": "a"}))).failures == []
    finally:
        await plain.close()
    assert trino_run(trino_url, f'SELECT * FROM "{trino_catalog}"."{trino_schema}"."target"') == [[1, "a"]]
