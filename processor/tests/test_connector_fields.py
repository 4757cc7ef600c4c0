"""PostgreSQL and Trino connector fields of the Go project's current release: orderByColumn,
readBatchSize, upsertStrategy / upsertVersionColumn, softDeleteColumn, Trino upsertMode / conflictKey.

The spec rules (each refusal names its field) and the statements the sinks build, without a
server; tests/integration/test_connector_fields.py runs them against the real PostgreSQL and Trino.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.postgresql.sink import PostgresSink, _DeletePlan, _Plan, _status_count
from dataflow_processor.connectors.postgresql.types import Column
from dataflow_processor.connectors.trino.sink import TrinoSink
from dataflow_processor.records import Record
from dataflow_processor.spec import DataFlowSpec, SpecError, parse_spec
from dataflow_processor.spec.connectors import (
    PostgresSinkConfig,
    PostgresSourceConfig,
    TrinoSinkConfig,
    TrinoSourceConfig,
)

PG = {"connectionString": "postgres://x", "table": "t"}
TRINO = {"serverURL": "http://trino:8080", "catalog": "iceberg", "schema": "s", "table": "t"}
KAFKA = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "orders"}}


def problems(source: dict[str, Any], sink: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec({"source": source, "sink": sink})
    return info.value.problems


# ----------------------------------------------------------------------------- spec: orderByColumn


@pytest.mark.parametrize(("model", "fields"), [(PostgresSourceConfig, PG), (TrinoSourceConfig, TRINO)])
def test_order_by_column_is_the_key_column(model: Any, fields: dict[str, Any]) -> None:
    config = model.model_validate({**fields, "orderByColumn": "price_id"})
    assert config.key_column == "price_id"
    same = model.model_validate({**fields, "orderByColumn": "price_id", "keyColumn": "price_id"})
    assert same.key_column == "price_id"
    assert model.model_validate(fields).key_column == "id"  # the default stays


@pytest.mark.parametrize(("kind", "fields"), [("postgresql", PG), ("trino", TRINO)])
@pytest.mark.parametrize("shape", ["block", "config"])
def test_order_by_column_and_a_different_key_column_are_refused(kind: str, fields: dict[str, Any], shape: str) -> None:
    block = {**fields, "orderByColumn": "a", "keyColumn": "b"}
    source = {"type": kind, ("config" if shape == "config" else kind): block}
    found = problems(source, {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "o"}})
    assert any("orderByColumn: another name for keyColumn" in p and "spec.source" in p for p in found), found


def test_order_by_column_in_the_go_shape() -> None:
    spec = DataFlowSpec.model_validate(
        {"source": {"type": "postgresql", "config": {**PG, "orderByColumn": "material_id", "readBatchSize": 0}},
         "sink": KAFKA}
    )
    config = spec.source.config
    assert isinstance(config, PostgresSourceConfig)
    assert (config.key_column, config.read_batch_size) == ("material_id", 0)


def test_a_column_name_with_nul_is_refused() -> None:
    found = problems({"type": "postgresql", "postgresql": {**PG, "orderByColumn": "a\x00b"}}, KAFKA)
    assert any("NUL" in p for p in found), found


# ----------------------------------------------------------------------------- spec: readBatchSize


@pytest.mark.parametrize(("kind", "fields"), [("postgresql", PG), ("trino", TRINO)])
@pytest.mark.parametrize("size", [-1, 100_001])
def test_read_batch_size_is_bounded(kind: str, fields: dict[str, Any], size: int) -> None:
    found = problems({"type": kind, kind: {**fields, "readBatchSize": size}}, KAFKA)
    assert any(f"spec.source.{kind}.readBatchSize" in p for p in found), found


def test_trino_read_batch_size_default_is_the_processor_batch() -> None:
    from dataflow_processor.connectors.base import BatchPolicy
    from dataflow_processor.connectors.trino.source import TrinoSource

    policy = BatchPolicy(250, 0.1)
    context = ConnectorContext("ns", "df", "source")
    for size, pages in [(None, 250), (0, 250), (7, 7), (5000, 5000)]:
        source = TrinoSource(TrinoSourceConfig.model_validate({**TRINO, "readBatchSize": size}), context)
        assert source.page_size(policy) == pages


def test_postgresql_read_batch_size_zero_reads_pages_of_the_default() -> None:
    from dataflow_processor.connectors.postgresql.source import DEFAULT_READ_BATCH, PostgresSource

    context = ConnectorContext("ns", "df", "source")
    source = PostgresSource(PostgresSourceConfig.model_validate({**PG, "readBatchSize": 0}), context)
    assert source.read_batch_size == DEFAULT_READ_BATCH == 1000


# ----------------------------------------------------------------------------- spec: PostgreSQL sink


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"upsertStrategy": "ifNewer", "upsertVersionColumn": "v"}, "upsertStrategy: ifNewer applies to upsertMode"),
        ({"upsertMode": True, "upsertStrategy": "ifNewer"}, "upsertVersionColumn: required"),
        ({"upsertMode": True, "upsertStrategy": "newest"}, "spec.sink.postgresql.upsertStrategy"),
        ({"upsertVersionColumn": "x" * 64}, "spec.sink.postgresql.upsertVersionColumn"),
        ({"softDeleteColumn": "x" * 64}, "spec.sink.postgresql.softDeleteColumn"),
        ({"softDeleteColumn": "deleted_at", "conflictKey": ""}, "softDeleteColumn: needs conflictKey"),
    ],
)
def test_postgresql_sink_refusals_name_the_field(fields: dict[str, Any], expected: str) -> None:
    found = problems(KAFKA, {"type": "postgresql", "postgresql": {**PG, **fields}})
    assert any(expected in p for p in found), found


def test_postgresql_sink_go_shape_is_accepted() -> None:
    go = {**PG, "upsertMode": True, "conflictKey": "id", "upsertStrategy": "ifNewer",
          "upsertVersionColumn": "updated_at", "softDeleteColumn": "deleted_at"}
    spec = DataFlowSpec.model_validate({"source": KAFKA, "sink": {"type": "postgresql", "config": go}})
    assert isinstance(spec.sink.config, PostgresSinkConfig)
    assert spec.sink.config.upsert_strategy == "ifNewer"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"upsertMode": True, "conflictKey": ""}, "conflictKey: must not be empty when upsertMode is on"),
        ({"upsertMode": True, "conflictKey": "a,,b"}, "spec.sink.trino.conflictKey"),
        ({"conflictKey": "x" * 254}, "spec.sink.trino.conflictKey"),
    ],
)
def test_trino_sink_refusals_name_the_field(fields: dict[str, Any], expected: str) -> None:
    found = problems(KAFKA, {"type": "trino", "trino": {**TRINO, **fields}})
    assert any(expected in p for p in found), found


# ----------------------------------------------------------------------------- PostgreSQL statements


def pg_sink(**fields: Any) -> PostgresSink:
    sink = PostgresSink(
        PostgresSinkConfig.model_validate({**PG, **fields}), ConnectorContext("ns", "df", "sink")
    )
    sink.columns = {
        "id": Column("id", "int8", "bigint", True),
        "name": Column("name", "text", "text", True),
        "v": Column("v", "timestamptz", "timestamp with time zone", True),
        "deleted_at": Column("deleted_at", "timestamptz", "timestamp with time zone", True),
        "tag": Column("tag", "mood", "mood", True),  # an enum: sent as text, cast by the server
    }
    sink._check_columns(sink.columns)
    return sink


def test_if_newer_guards_the_update_and_keeps_the_greatest_version_per_key() -> None:
    sink = pg_sink(upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="v")
    sql = _Plan(sink, ("id", "name", "v")).sql
    assert 'ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "v" = EXCLUDED."v"' in sql
    assert sql.endswith('WHERE t."v" IS NULL OR t."v" < EXCLUDED."v"')
    assert "PARTITION BY u.c0 ORDER BY u.c2 DESC, u.ord" in sql
    assert "WHERE u.rn = 1 OR u.c0 IS NULL" in sql


def test_always_has_no_version_guard() -> None:
    sink = pg_sink(upsertMode=True, upsertVersionColumn="v")  # strategy always: v is not compared
    sql = _Plan(sink, ("id", "name", "v")).sql
    assert "WHERE" not in sql and "row_number" not in sql


def test_soft_delete_marks_by_key_and_a_later_write_clears_the_mark() -> None:
    sink = pg_sink(upsertMode=True, softDeleteColumn="deleted_at")
    assert _Plan(sink, ("id", "name")).sql.endswith('"name" = EXCLUDED."name", "deleted_at" = NULL')
    assert _Plan(sink, ("id",)).sql.endswith('ON CONFLICT ("id") DO UPDATE SET "deleted_at" = NULL')
    delete = _DeletePlan(sink, ("id",)).sql
    assert delete == (
        'UPDATE "t" AS t SET "deleted_at" = now() FROM unnest($1::bigint[]) AS u(c0) WHERE t."id" = u.c0'
    )


def test_soft_delete_under_if_newer_applies_to_a_version_not_older() -> None:
    sink = pg_sink(upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="v",
                   softDeleteColumn="deleted_at", conflictKey="id,tag")
    delete = _DeletePlan(sink, ("id", "tag", "v")).sql
    assert 't."tag" = u.c1::mood' in delete
    assert delete.endswith('(t."v" IS NULL OR t."v" <= u.c2)')


def test_a_batch_is_split_into_ordered_runs_of_rows_and_deletes() -> None:
    sink = pg_sink(upsertMode=True, softDeleteColumn="deleted_at")
    sink.document_column = None
    delete = {"operation": "delete"}
    batch = [
        Record({"id": 1, "name": "a"}),
        Record({"id": 1}, metadata=delete),
        Record({"id": 2}, metadata=delete),
        Record({"id": 1, "name": "b"}, metadata={"operation": "update"}),
        Record({"name": "no key"}, metadata=delete),
    ]
    failures: list[Any] = []
    steps = sink._steps(batch, failures)
    assert [(kind, columns, group[0]) for kind, columns, group in steps] == [
        ("rows", ("id", "name"), [0]),
        ("deletes", ("id",), [1, 2]),
        ("rows", ("id", "name"), [3]),
    ]
    assert [f.index for f in failures] == [4]
    assert "field 'id' is missing or null" in failures[0].error


def test_if_newer_refuses_records_without_a_version() -> None:
    sink = pg_sink(upsertMode=True, upsertStrategy="ifNewer", upsertVersionColumn="v")
    sink.document_column = None
    batch = [Record({"id": 1, "v": "2024-01-01T00:00:00Z"}), Record({"id": 2}), Record({"id": 3, "v": None})]
    failures: list[Any] = []
    steps = sink._steps(batch, failures)
    assert [group[0] for _, _, group in steps] == [[0]]
    assert [f.index for f in failures] == [1, 2]
    assert all("upsertVersionColumn 'v' is missing or null" in f.error for f in failures)


def test_metadata_is_not_read_without_soft_delete() -> None:
    class Unreadable(dict):  # type: ignore[type-arg]
        def get(self, *args: Any) -> Any:
            raise AssertionError("metadata read")

    sink = pg_sink(upsertMode=True)
    sink.document_column = None
    steps = sink._steps([Record({"id": 1}, metadata=Unreadable())], [])
    assert len(steps) == 1


@pytest.mark.parametrize(
    ("fields", "columns", "expected"),
    [
        ({"upsertMode": True, "upsertStrategy": "ifNewer", "upsertVersionColumn": "nope"}, {}, "has no column 'nope'"),
        ({"upsertMode": True, "upsertStrategy": "ifNewer", "upsertVersionColumn": "name"}, {}, "is text; a version"),
        ({"softDeleteColumn": "nope"}, {}, "softDeleteColumn: table t has no writable column 'nope'"),
        ({"softDeleteColumn": "name"}, {}, "softDeleteColumn: column 'name' of table t is text"),
        ({"softDeleteColumn": "deleted_at", "conflictKey": "sku"}, {}, "has no column 'sku'"),
    ],
)
def test_table_checks_name_the_field(fields: dict[str, Any], columns: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        pg_sink(**fields)


def test_a_boolean_soft_delete_column_is_a_flag() -> None:
    sink = pg_sink(softDeleteColumn="deleted_at")
    sink.columns["deleted_at"] = Column("deleted_at", "bool", "boolean", True)
    sink._check_columns(sink.columns)
    assert _DeletePlan(sink, ("id",)).sql.startswith('UPDATE "t" AS t SET "deleted_at" = true ')
    assert (sink.soft_delete_set, sink.soft_delete_clear) == ("true", "false")


def test_status_count() -> None:
    assert (_status_count("INSERT 0 5"), _status_count("UPDATE 3"), _status_count("COPY")) == (5, 3, 0)


# ----------------------------------------------------------------------------- Trino statements


def trino_sink(**fields: Any) -> TrinoSink:
    sink = TrinoSink(
        TrinoSinkConfig.model_validate({**TRINO, **fields}), ConnectorContext("ns", "df", "sink")
    )
    sink.client = type("Client", (), {"table_name": '"iceberg"."s"."t"'})()  # type: ignore[assignment]
    sink.column_types = {"id": "bigint", "name": "varchar", "at": "timestamp(6)"}
    return sink


def test_trino_upsert_is_one_merge_on_the_key() -> None:
    sink = trino_sink(upsertMode=True, conflictKey="id")
    head, tail = sink._statement(["id", "name", "at"])
    statement = head + "'[]'" + tail
    assert statement == (
        'MERGE INTO "iceberg"."s"."t" AS t USING (SELECT u."id" AS "id", u."name" AS "name", '
        'CAST(u."at" AS timestamp(6)) AS "at" FROM UNNEST(CAST(json_parse(\'[]\') AS ARRAY(ROW("id" bigint, '
        '"name" varchar, "at" varchar)))) AS u) AS s ON t."id" = s."id" '
        'WHEN MATCHED THEN UPDATE SET "name" = s."name", "at" = s."at" '
        'WHEN NOT MATCHED THEN INSERT ("id", "name", "at") VALUES (s."id", s."name", s."at")'
    )


def test_trino_without_upsert_mode_inserts() -> None:
    head, _ = trino_sink(conflictKey="id")._statement(["id", "name"])
    assert head.startswith('INSERT INTO "iceberg"."s"."t" ("id", "name") SELECT')


def test_trino_merge_keeps_the_last_row_per_key() -> None:
    sink = trino_sink(upsertMode=True, conflictKey="id,name")
    rows = [(0, [1, "a", None]), (1, [1, "a", "x"]), (2, [None, "a", None]), (3, [None, "a", None]), (4, [2, "a", 1])]
    kept = sink._last_per_key(["id", "name", "at"], rows)
    assert [index for index, _ in kept] == [1, 2, 3, 4]
    assert json.dumps(kept[0][1]) == '[1, "a", "x"]'
