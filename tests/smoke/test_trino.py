"""Smoke test of the local Trino: the server answers, and its writable catalog keeps what is written.

Goes through the Python `trino` client (the processor's Trino connector uses the same one).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import trino
from trino.exceptions import TrinoUserError

pytestmark = pytest.mark.smoke


def _connect(url: str, catalog: str, schema: str | None = None) -> trino.dbapi.Connection:
    u = urlsplit(url)
    return trino.dbapi.connect(
        host=u.hostname,
        port=u.port,
        http_scheme=u.scheme,
        user="smoke",
        catalog=catalog,
        schema=schema,
        request_timeout=30,
    )


def _query(conn: trino.dbapi.Connection, sql: str, params: list | None = None) -> list[list]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


@pytest.fixture
def schema(trino_url: str, trino_catalog: str) -> Iterator[str]:
    name = f"smoke_{uuid.uuid4().hex[:12]}"
    conn = _connect(trino_url, trino_catalog)
    _query(conn, f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        for (table,) in _query(conn, f"SHOW TABLES FROM {name}"):
            _query(conn, f"DROP TABLE {name}.{table}")
        _query(conn, f"DROP SCHEMA {name}")
        conn.close()


def test_server_info(trino_url: str) -> None:
    with urllib.request.urlopen(f"{trino_url}/v1/info", timeout=10) as resp:
        info = json.load(resp)
    assert info["starting"] is False
    assert info["coordinator"] is True
    assert info["nodeVersion"]["version"].isdigit()


def test_catalogs_and_select(trino_url: str, trino_catalog: str) -> None:
    conn = _connect(trino_url, trino_catalog)
    try:
        catalogs = {c for (c,) in _query(conn, "SHOW CATALOGS")}
        assert {trino_catalog, "system"} <= catalogs
        assert _query(conn, "SELECT 1 + 1, 'x' || 'y'") == [[2, "xy"]]
        nodes = _query(conn, "SELECT coordinator, state FROM system.runtime.nodes")
        assert nodes == [[True, "active"]]
    finally:
        conn.close()


def test_create_insert_select(trino_url: str, trino_catalog: str, schema: str) -> None:
    conn = _connect(trino_url, trino_catalog, schema)
    try:
        _query(
            conn,
            "CREATE TABLE events (id bigint, name varchar, amount decimal(10, 2), ok boolean, ts timestamp(3))",
        )
        ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
        # client-side parameters (qmark), as a sink binds a row
        _query(conn, "INSERT INTO events VALUES (?, ?, ?, ?, ?)", [1, "first", Decimal("12.34"), True, ts])
        # a multi-row statement
        values = ", ".join(
            f"({i}, 'n{i}', {i}.50, {str(i % 2 == 0).lower()}, TIMESTAMP '2026-01-01 00:00:00')" for i in range(2, 101)
        )
        assert _query(conn, f"INSERT INTO events VALUES {values}") == [[99]]

        assert _query(conn, "SELECT id, name, amount, ok, ts FROM events WHERE id = 1") == [
            [1, "first", Decimal("12.34"), True, ts]
        ]
        assert _query(conn, "SELECT count(*), sum(id), count_if(ok) FROM events") == [[100, 5050, 51]]
        assert _query(conn, "SELECT name FROM events WHERE id > 97 ORDER BY id") == [["n98"], ["n99"], ["n100"]]

        # CREATE TABLE AS reads and writes the same catalog
        assert _query(conn, "CREATE TABLE evens AS SELECT id, name FROM events WHERE id % 2 = 0") == [[50]]
        assert _query(conn, "SELECT max(id) FROM evens") == [[100]]

        tables = _query(
            conn,
            f"SELECT table_name FROM {trino_catalog}.information_schema.tables "
            f"WHERE table_schema = '{schema}' ORDER BY table_name",
        )
        assert tables == [["evens"], ["events"]]
    finally:
        conn.close()


def test_data_outlives_the_session(trino_url: str, trino_catalog: str, schema: str) -> None:
    writer = _connect(trino_url, trino_catalog, schema)
    try:
        _query(writer, "CREATE TABLE kv (k varchar, v bigint)")
        _query(writer, "INSERT INTO kv VALUES ('a', 1), ('b', 2)")
    finally:
        writer.close()
    reader = _connect(trino_url, trino_catalog, schema)
    try:
        assert _query(reader, "SELECT k, v FROM kv ORDER BY k") == [["a", 1], ["b", 2]]
    finally:
        reader.close()


def test_missing_table_is_a_user_error(trino_url: str, trino_catalog: str, schema: str) -> None:
    conn = _connect(trino_url, trino_catalog, schema)
    try:
        with pytest.raises(TrinoUserError) as err:
            _query(conn, "SELECT * FROM no_such_table")
        assert err.value.error_name == "TABLE_NOT_FOUND"
    finally:
        conn.close()
