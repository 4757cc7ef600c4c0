"""Trino's pure functions, without a server: error classification, typed literals (the source's
key filter) and the values of the sink's JSON batch, per column type."""

from __future__ import annotations

import pytest
import trino.exceptions

from dataflow_processor.connectors.trino import is_transient, json_value, render_literal


def test_error_classification() -> None:
    def query_error(error_type: str, name: str) -> trino.exceptions.TrinoQueryError:
        return trino.exceptions.TrinoQueryError({"errorType": error_type, "errorName": name, "message": "m"})

    assert is_transient(query_error("INSUFFICIENT_RESOURCES", "EXCEEDED_LOCAL_MEMORY_LIMIT"))
    assert is_transient(query_error("INTERNAL_ERROR", "SERVER_SHUTTING_DOWN"))
    assert is_transient(query_error("EXTERNAL", "ICEBERG_COMMIT_ERROR"))
    assert is_transient(trino.exceptions.Http503Error("busy"))
    assert not is_transient(query_error("USER_ERROR", "INVALID_CAST_ARGUMENT"))
    assert not is_transient(query_error("INTERNAL_ERROR", "GENERIC_INTERNAL_ERROR"))


@pytest.mark.parametrize(
    ("value", "kind", "literal"),
    [
        (5, "integer", "5"),
        ("7", "bigint", "BIGINT '7'"),
        (1.5, "double", "DOUBLE '1.5'"),
        ("x'y", "varchar(3)", "'x''y'"),
        ({"a": "'"}, "varchar", "'{\"a\":\"''\"}'"),
        ("12.50", "decimal(10,2)", "DECIMAL '12.50'"),
        (1714979289, "timestamp(3)", "TIMESTAMP '2024-05-06 07:08:09.000000'"),
        (1714979289000, "timestamp(3)", "TIMESTAMP '2024-05-06 07:08:09.000000'"),
        ("2024-05-06T09:08:09+02:00", "timestamp(6)", "TIMESTAMP '2024-05-06 07:08:09.000000'"),
        (None, "bigint", "NULL"),
    ],
)
def test_literals(value: object, kind: str, literal: str) -> None:
    assert render_literal(value, kind) == literal


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "bigint"), (2**63, "bigint"), (300, "tinyint"), ("1.5", "integer"), ("nope", "date"), ("abc", "boolean")],
)
def test_literal_rejects(value: object, kind: str) -> None:
    with pytest.raises(ValueError):
        render_literal(value, kind)


@pytest.mark.parametrize(
    ("value", "kind", "normalized"),
    [
        (7, "integer", 7),
        ("8", "bigint", 8),
        (float("nan"), "double", "NaN"),
        ("12.50", "decimal(10,2)", "12.50"),
        ({"a": 1}, "varchar", '{"a":1}'),
        (True, "varchar", "true"),
        ({"a": None}, "json", '{"a":null}'),
        ("2024-05-06T09:08:09+02:00", "timestamp(6)", "2024-05-06 07:08:09.000000"),
        ("2024-05-06T09:08:09+02:00", "timestamp(3) with time zone", "2024-05-06 09:08:09.000000 +02:00"),
        ("aGk=", "varbinary", "6869"),
        ([1, 2], "array(bigint)", [1, 2]),
    ],
)
def test_json_values(value: object, kind: str, normalized: object) -> None:
    assert json_value(value, kind) == normalized
