"""Trino sink against the real Trino (memory catalog): typed batched INSERTs, auto-create, failures.

Each test writes through the real pipeline (memory source → Trino sink, memory errors sink) and
reads the table back with its own client, asserting exactly which rows arrived where.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from dataflow_processor.connectors.base import ConnectorContext, TransientError
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.connectors.trino import TrinoSink
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec.connectors import TrinoSinkConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import trino_run
from tests.integration.http_doubles import RecordingProxy

pytestmark = pytest.mark.integration

FAST = PipelineSettings(batch_size=500, linger_seconds=0.01, commit_interval=0.05, retry_initial=0.05, retry_max=0.5)


def sink_config(url: str, catalog: str, schema: str, table: str, **extra: object) -> TrinoSinkConfig:
    return TrinoSinkConfig.model_validate(
        {"serverURL": url, "catalog": catalog, "schema": schema, "table": table, **extra}
    )


async def run(source: MemorySource, sink: TrinoSink, errors: MemorySink | None = None) -> Pipeline:
    pipeline = Pipeline(source=source, chain=TransformChain.from_spec([]), sink=sink, errors_sink=errors, settings=FAST)
    await pipeline.run()
    return pipeline


def rows(url: str, catalog: str, schema: str, table: str, order: str = "id") -> list[list[object]]:
    return trino_run(url, f'SELECT * FROM "{catalog}"."{schema}"."{table}" ORDER BY "{order}"')


async def test_typed_columns_batched_inserts_and_escaping(
    trino_url: str, trino_catalog: str, trino_schema: str
) -> None:
    trino_run(
        trino_url,
        f'CREATE TABLE "{trino_catalog}"."{trino_schema}".typed ('
        "id bigint, name varchar, small integer, price decimal(10,2), ts timestamp(6), "
        "tz timestamp(3) with time zone, d date, ok boolean, x double, doc json, tags array(varchar), "
        "u uuid, b varbinary)",
    )
    ids = [str(uuid.UUID(int=i)) for i in range(25)]
    values = [
        {
            "id": i,
            "name": ["O'Brien", "semi; DROP TABLE x; --", 'dq"uote', "ünï ✓", "back\\slash"][i % 5],
            "small": i * 10,
            "price": f"{i}.25",
            "ts": "2024-05-06T07:08:09.123456Z",
            "tz": "2024-05-06T07:08:09.5+02:00",
            "d": "2024-05-06",
            "ok": i % 2 == 0,
            "x": i / 4,
            "doc": {"k": [i, "v'"]},
            "tags": ["a", "b'c"],
            "u": ids[i],
            "b": "aGk=",
            "not_a_column": "dropped",
        }
        for i in range(25)
    ]
    values[3] = {"id": 3}  # missing keys → NULL
    sink = TrinoSink(
        sink_config(trino_url, trino_catalog, trino_schema, "typed", batchSize=10, batchFlushIntervalSeconds=0.05),
        ConnectorContext("it", "trino", "sink"),
    )
    errors = MemorySink()
    await run(MemorySource(values), sink, errors)

    got = rows(trino_url, trino_catalog, trino_schema, "typed")
    assert [r[0] for r in got] == list(range(25))
    assert errors.values == []
    assert sink.statements == 3  # 25 rows in batches of 10: one INSERT per batch
    first = got[0]
    assert first[1:10] == [
        "O'Brien",
        0,
        Decimal("0.25"),
        dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
        dt.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.date(2024, 5, 6),
        True,
        0.0,
        '{"k":[0,"v\'"]}',
    ]
    assert first[10:] == [["a", "b'c"], uuid.UUID(ids[0]), b"hi"]
    assert [r[1] for r in got[:5]] == ["O'Brien", "semi; DROP TABLE x; --", 'dq"uote', None, "back\\slash"]
    assert got[3][1:] == [None] * 12
    assert got[8][1] == "ünï ✓"


async def test_failing_values_go_to_errors_sink_alone(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    """A value Trino rejects (too long for varchar(5)) and one that cannot be typed (text for bigint)."""
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}".strict (id bigint, code varchar(5))')
    values = [{"id": i, "code": f"c{i}"} for i in range(40)]
    values[13] = {"id": 13, "code": "much-too-long"}  # rejected by Trino itself (bisected)
    values[27] = {"id": "twenty-seven", "code": "x"}  # rejected before sending
    sink = TrinoSink(
        sink_config(trino_url, trino_catalog, trino_schema, "strict", batchSize=40), ConnectorContext("it", "t", "sink")
    )
    errors = MemorySink()
    source = MemorySource(values)
    await run(source, sink, errors)

    got = rows(trino_url, trino_catalog, trino_schema, "strict")
    assert [r[0] for r in got] == [i for i in range(40) if i not in (13, 27)]
    assert sorted(str(e["original_message"]["id"]) for e in errors.values) == ["13", "twenty-seven"]
    by_id = {e["original_message"]["id"]: e["error"]["message"] for e in errors.values}
    assert "varchar(5)" in by_id[13]
    assert "not an integer" in by_id["twenty-seven"]
    assert source.committed == {0: 40}


async def test_auto_create_infers_typed_columns(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    values = [
        {"id": i, "name": f"n{i}", "score": i + 0.5, "vip": i == 2, "tags": ["x"], "note": None} for i in range(5)
    ]
    values[4]["note"] = "late"
    sink = TrinoSink(
        sink_config(trino_url, trino_catalog, trino_schema, "auto", autoCreateTable=True),
        ConnectorContext("it", "t", "sink"),
    )
    await run(MemorySource(values), sink)
    columns = trino_run(trino_url, f'DESCRIBE "{trino_catalog}"."{trino_schema}"."auto"')
    assert [(c[0], c[1]) for c in columns] == [
        ("id", "bigint"),
        ("name", "varchar"),
        ("score", "double"),
        ("vip", "boolean"),
        ("tags", "varchar"),
        ("note", "varchar"),
    ]
    got = rows(trino_url, trino_catalog, trino_schema, "auto")
    assert got[2] == [2, "n2", 2.5, True, '["x"]', None]
    assert got[4][5] == "late"


async def test_raw_mode_writes_json_into_data_column(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    sink = TrinoSink(
        sink_config(trino_url, trino_catalog, trino_schema, "raw", autoCreateTable=True, rawMode=True),
        ConnectorContext("it", "t", "sink"),
    )
    await run(MemorySource([{"id": 1, "a": "b'"}, {"id": 2}]), sink)
    got = trino_run(trino_url, f'SELECT data FROM "{trino_catalog}"."{trino_schema}"."raw" ORDER BY data')
    assert got == [['{"id":1,"a":"b\'"}'], ['{"id":2}']]


async def test_missing_table_without_auto_create_fails_at_connect(
    trino_url: str, trino_catalog: str, trino_schema: str
) -> None:
    sink = TrinoSink(sink_config(trino_url, trino_catalog, trino_schema, "absent"), ConnectorContext("it", "t", "sink"))
    with pytest.raises(RuntimeError, match="does not exist and autoCreateTable is not set"):
        await sink.connect()


async def test_transient_http_failures_are_retried_without_duplicates(
    trino_catalog: str, trino_schema: str, trino_url: str, trino_proxy: RecordingProxy
) -> None:
    """Trino answering 503 (through the proxy) more often than the client's own retries: the pipeline retries."""
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}".flaky (id bigint)')
    sink = TrinoSink(
        sink_config(trino_proxy.url, trino_catalog, trino_schema, "flaky", batchSize=5),
        ConnectorContext("it", "t", "sink"),
    )
    await sink.connect()
    trino_proxy.fail_statements = 4  # the trino client tries 3 times per call
    from dataflow_processor.records import Record

    with pytest.raises(TransientError):
        await sink.write([Record({"id": 0})])
    assert trino_proxy.failed == 3
    errors = MemorySink()
    await run(MemorySource([{"id": i} for i in range(1, 11)]), sink, errors)
    assert trino_proxy.failed == 4
    assert [r[0] for r in rows(trino_url, trino_catalog, trino_schema, "flaky")] == list(range(1, 11))
    assert errors.values == []


async def test_query_timeout_is_transient(
    trino_catalog: str, trino_schema: str, trino_url: str, trino_proxy: RecordingProxy
) -> None:
    trino_run(trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."slow" (id bigint)')
    sink = TrinoSink(
        sink_config(trino_proxy.url, trino_catalog, trino_schema, "slow", queryTimeoutSeconds=0.3),
        ConnectorContext("it", "t", "sink"),
    )
    await sink.connect()
    trino_proxy.delay_statements = 1.0
    from dataflow_processor.records import Record

    with pytest.raises(TransientError, match="timed out"):
        await sink.write([Record({"id": 1})])
    trino_proxy.delay_statements = 0
    assert (await sink.write([Record({"id": 2})])).failures == []


async def test_non_finite_doubles_and_decimal_scale(trino_url: str, trino_catalog: str, trino_schema: str) -> None:
    trino_run(
        trino_url, f'CREATE TABLE "{trino_catalog}"."{trino_schema}"."nums" (id bigint, x double, d decimal(6,2))'
    )
    values = [
        {"id": 1, "x": "NaN", "d": "1.005"},  # JSON has no NaN: it arrives as text
        {"id": 2, "x": "Infinity", "d": 2},
        {"id": 3, "x": "-Infinity", "d": "3.10"},
        {"id": 4, "x": "1e3", "d": "12345.6"},  # 12345.60 needs 7 digits: Trino rejects it, alone
    ]
    sink = TrinoSink(sink_config(trino_url, trino_catalog, trino_schema, "nums"), ConnectorContext("it", "t", "sink"))
    errors = MemorySink()
    await run(MemorySource(values), sink, errors)
    got = rows(trino_url, trino_catalog, trino_schema, "nums")
    assert [r[0] for r in got] == [1, 2, 3]
    assert str(got[0][1]) == "nan" and got[1][1] == float("inf") and got[2][1] == float("-inf")
    assert [r[2] for r in got] == [Decimal("1.01"), Decimal("2.00"), Decimal("3.10")]
    assert [e["original_message"]["id"] for e in errors.values] == [4]
