"""PostgreSQL sink against the real PostgreSQL: COPY batches, typed columns, auto-create, rawMode,
upsert, quoting, and the errors-sink paths (bad values, constraint violations mid-batch)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.connectors.postgresql import PostgresSink
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.spec.connectors import PostgresSinkConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import FAST

pytestmark = pytest.mark.integration


def make_sink(dsn: str, table: str, **extra: Any) -> PostgresSink:
    config = PostgresSinkConfig.model_validate({"connectionString": dsn, "table": table, **extra})
    return PostgresSink(config, ConnectorContext("it", "pg", "sink"))


async def run(sink: PostgresSink, records: list[Any], *, batch_size: int | None = None) -> MemorySink:
    """Write ``records`` through a real pipeline into ``sink``; return the errors sink."""
    errors = MemorySink()
    if batch_size is not None:
        sink.batch_size = batch_size
    pipeline = Pipeline(
        source=MemorySource(records),
        chain=TransformChain.from_spec([]),
        sink=sink,
        errors_sink=errors,
        settings=FAST,
    )
    await pipeline.run()
    return errors


def error_messages(errors: MemorySink) -> dict[Any, str]:
    """Errors envelopes by the original record's ``id``: the error text."""
    return {e.value["original_message"].get("id"): e.value["error"]["message"] for e in errors.records}  # type: ignore[index]


async def test_typed_columns_written_with_copy_in_batches(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(
        f"""CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(10,2),
        paid boolean, at timestamptz, day date, tags jsonb, ratio double precision, small smallint,
        created_at timestamptz NOT NULL DEFAULT now())"""
    )
    records = [
        {
            "id": i,
            "name": f"n{i}",
            "amount": i / 4,
            "paid": i % 2 == 0,
            "at": "2026-01-02T03:04:05Z",
            "day": "2026-01-02",
            "tags": {"k": [i, "x"]},
            "ratio": 0.5,
            "small": i % 100,
        }
        for i in range(2500)
    ]
    sink = make_sink(pg_dsn, table)
    assert sink.batch_size == 1000 and sink.flush_interval == 1.0  # the documented defaults
    calls: list[int] = []
    write = sink.write

    async def counting(batch: list[Any]) -> Any:
        calls.append(len(batch))
        return await write(batch)

    sink.write = counting  # type: ignore[method-assign]
    errors = await run(sink, records)
    assert errors.records == []
    assert calls == [1000, 1000, 500]
    rows = await pg.fetch(f'SELECT * FROM "{table}" ORDER BY id')
    assert len(rows) == 2500
    r = rows[7]
    assert (r["id"], r["name"], r["amount"], r["paid"], r["day"], r["ratio"], r["small"]) == (
        7,
        "n7",
        Decimal("1.75"),
        False,
        dt.date(2026, 1, 2),
        0.5,
        7,
    )
    assert r["at"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert orjson.loads(r["tags"]) == {"k": [7, "x"]}
    assert r["created_at"] is not None  # absent key → column default


async def test_constraint_violations_mid_batch_go_to_errors_sink_alone(
    pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    await pg.execute(
        f"""CREATE TABLE "{table}" (id int PRIMARY KEY, name text NOT NULL, amount int CHECK (amount >= 0))"""
    )
    await pg.execute(f"INSERT INTO \"{table}\" VALUES (500, 'existing', 1)")
    records: list[dict[str, Any]] = [{"id": i, "name": f"n{i}", "amount": i} for i in range(300)]
    records[41] = {"id": 41, "name": None, "amount": 1}  # NOT NULL
    records[150] = {"id": 150, "name": "neg", "amount": -5}  # CHECK
    records[151] = {"id": 40, "name": "dup", "amount": 1}  # duplicate key inside the batch
    records[299] = {"id": 500, "name": "clash", "amount": 1}  # duplicate of an existing row
    errors = await run(make_sink(pg_dsn, table), records, batch_size=300)
    names = [e.value["original_message"]["name"] for e in errors.records]  # type: ignore[index]
    assert sorted(names, key=str) == sorted(["clash", "dup", "neg", None], key=str)
    by_name = {e.value["original_message"]["name"]: e.value["error"] for e in errors.records}  # type: ignore[index]
    assert "23502" in by_name[None]["message"]  # not_null_violation
    assert "23514" in by_name["neg"]["message"]  # check_violation
    assert "23505" in by_name["dup"]["message"]  # unique_violation
    assert by_name["clash"]["stage"] == "write"
    ids = [r["id"] for r in await pg.fetch(f'SELECT id FROM "{table}" ORDER BY id')]
    expected = sorted({*range(300)} - {41, 150, 151, 299} | {500})
    assert ids == expected


async def test_bad_values_and_unknown_columns_are_isolated(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int, amount numeric, at timestamptz, n smallint)')
    records = [
        {"id": 1, "amount": 1.5, "at": "2026-01-01T00:00:00+02:00", "n": 1},
        {"id": 2, "amount": "not a number"},
        {"id": 3, "at": "yesterday"},
        {"id": 4, "n": 70000},  # out of smallint range
        {"id": 5, "extra": "no such column"},
        {"id": 6, "amount": "12.25", "at": 1767225600},  # numeric text and epoch seconds are fine
    ]
    errors = await run(make_sink(pg_dsn, table), records)
    messages = error_messages(errors)
    assert sorted(messages) == [2, 3, 4, 5]
    assert "'extra' not in table" in messages[5]
    rows = await pg.fetch(f'SELECT id, amount, at FROM "{table}" ORDER BY id')
    assert [(r["id"], r["amount"]) for r in rows] == [(1, Decimal("1.5")), (6, Decimal("12.25"))]
    assert rows[0]["at"] == dt.datetime(2025, 12, 31, 22, 0, tzinfo=dt.UTC)
    assert rows[1]["at"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_key_sets_that_change_within_a_batch(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    """Rows are built per key set: same keys in another order, another set of the same size, an unknown
    key in place of a known one, and back — each record lands in its columns or in the errors sink."""
    await pg.execute(f'CREATE TABLE "{table}" (id int, a text, b text, c text)')
    records = [
        {"id": 1, "a": "a1", "b": "b1"},
        {"b": "b2", "id": 2, "a": "a2"},  # same key set, other order
        {"id": 3, "a": "a3", "c": "c3"},  # same size, other set
        {"id": 4, "a": "a4", "x": "no such column"},  # same size, unknown key
        {"id": 5, "a": "a5", "b": "b5"},
        {"id": 6, "a": "a6"},
        {"id": 7, "a": "a7", "b": 7},  # converted to text
    ]
    errors = await run(make_sink(pg_dsn, table), records)
    messages = error_messages(errors)
    assert sorted(messages) == [4] and "'x' not in table" in messages[4]
    rows = await pg.fetch(f'SELECT id, a, b, c FROM "{table}" ORDER BY id')
    assert [tuple(r) for r in rows] == [
        (1, "a1", "b1", None),
        (2, "a2", "b2", None),
        (3, "a3", None, "c3"),
        (5, "a5", "b5", None),
        (6, "a6", None, None),
        (7, "a7", "7", None),
    ]


async def test_auto_create_jsonb_table_with_gin_index(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    records = [{"id": i, "nested": {"a": [1, 2]}, "s": "x'); DROP TABLE t; --"} for i in range(10)]
    errors = await run(make_sink(pg_dsn, table, autoCreateTable=True), records)
    assert errors.records == []
    columns = await pg.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        table,
    )
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("id", "bigint"),
        ("data", "jsonb"),
        ("created_at", "timestamp with time zone"),
    ]
    assert (
        await pg.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%gin%'", table) == 1
    )
    data = [orjson.loads(r["data"]) for r in await pg.fetch(f'SELECT data FROM "{table}" ORDER BY id')]
    assert data == records


async def test_raw_mode_writes_value_and_metadata(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    records = [{"id": i} for i in range(5)]
    errors = await run(make_sink(pg_dsn, table, autoCreateTable=True, rawMode=True), records)
    assert errors.records == []
    rows = await pg.fetch(f'SELECT value, _metadata FROM "{table}" ORDER BY id')
    assert [orjson.loads(r["value"]) for r in rows] == records
    assert [orjson.loads(r["_metadata"]) for r in rows] == [{"partition": 0, "offset": i} for i in range(5)]


async def test_upsert_by_primary_key_last_record_wins(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, v text, n int)')
    await pg.execute(f"INSERT INTO \"{table}\" VALUES (1, 'old', 0)")
    records: list[dict[str, Any]] = [{"id": i % 10, "v": f"v{i}", "n": i} for i in range(35)]  # every key several times, also in one batch
    errors = await run(make_sink(pg_dsn, table, upsertMode=True), records, batch_size=16)
    assert errors.records == []
    rows = await pg.fetch(f'SELECT id, v, n FROM "{table}" ORDER BY id')
    last = {r["id"]: r for r in records}
    assert [(r["id"], r["v"], r["n"]) for r in rows] == [(k, last[k]["v"], last[k]["n"]) for k in sorted(last)]


async def test_upsert_with_custom_conflict_key_and_document_layout(
    pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (sku text PRIMARY KEY, data jsonb NOT NULL)')
    records = [{"sku": f"s{i % 3}", "qty": i} for i in range(9)]
    sink = make_sink(pg_dsn, table, upsertMode=True, conflictKey="sku")
    errors = await run(sink, records, batch_size=4)
    assert errors.records == []
    rows = await pg.fetch(f'SELECT sku, data FROM "{table}" ORDER BY sku')
    assert [(r["sku"], orjson.loads(r["data"])) for r in rows] == [
        ("s0", {"sku": "s0", "qty": 6}),
        ("s1", {"sku": "s1", "qty": 7}),
        ("s2", {"sku": "s2", "qty": 8}),
    ]


async def test_upsert_isolates_a_bad_record(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, n int NOT NULL CHECK (n < 100))')
    records = [{"id": i, "n": i} for i in range(120)]
    errors = await run(make_sink(pg_dsn, table, upsertMode=True), records, batch_size=120)
    assert sorted(error_messages(errors)) == list(range(100, 120))
    assert await pg.fetchval(f'SELECT count(*) FROM "{table}"') == 100


async def test_identifiers_are_quoted(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    odd = table + '_We"ird'
    try:
        await pg.execute(f'CREATE TABLE "{odd.replace(chr(34), chr(34) * 2)}" ("select" int, "Mixed Case" text)')
        records = [{"select": 1, "Mixed Case": "a'b\"c"}]
        errors = await run(make_sink(pg_dsn, odd), records)
        assert errors.records == []
        row = await pg.fetchrow(f'SELECT * FROM "{odd.replace(chr(34), chr(34) * 2)}"')
        assert dict(row) == {"select": 1, "Mixed Case": "a'b\"c"}
    finally:
        await pg.execute(f'DROP TABLE IF EXISTS "{odd.replace(chr(34), chr(34) * 2)}"')


async def test_schema_qualified_table_and_missing_table(pg: asyncpg.Connection, pg_dsn: str, table: str) -> None:
    await pg.execute(f'CREATE TABLE public."{table}" (id int)')
    errors = await run(make_sink(pg_dsn, f"public.{table}"), [{"id": 1}])
    assert errors.records == []
    assert await pg.fetchval(f'SELECT count(*) FROM "{table}"') == 1
    missing = make_sink(pg_dsn, table + "_missing")
    with pytest.raises(Exception, match="does not exist"):
        await missing.connect()
    await missing.close()
