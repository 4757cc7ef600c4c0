"""The value rules shared by every table connector (connectors/values.py), and the PostgreSQL and
Trino conversion modules that build on them — all pure, and free of any driver import."""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import pytest

from dataflow_processor.connectors.postgresql.types import Column, decode_cursor, encode_cursor, row_builder
from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime, to_json_value

CONNECTORS = Path(__file__).parent.parent / "src" / "dataflow_processor" / "connectors"
DRIVERS = {"asyncpg", "trino", "pyiceberg", "pyarrow", "aiokafka", "requests", "kubernetes"}


class DriverRow:
    """What a driver's row looks like to the rule (asyncpg.Record: ``items()``, not a dict)."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def items(self) -> Any:
        return self._values.items()


@pytest.mark.parametrize(
    ("value", "json"),
    [
        (decimal.Decimal("12.50"), "12.50"),  # exact, scale kept: money is not a float
        (decimal.Decimal("7"), "7"),
        (decimal.Decimal("1E+3"), "1E+3"),
        (decimal.Decimal("NaN"), "NaN"),
        (12, 12),
        (1.5, 1.5),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
        (True, True),
        (dt.date(2024, 5, 6), "2024-05-06"),
        (dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), "2024-05-06T07:08:09+00:00"),
        (dt.time(10, 11, 12), "10:11:12"),
        (dt.timedelta(days=1, seconds=1.5), 86401.5),
        (b"hi", "aGk="),
        (memoryview(b"hi"), "aGk="),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ({"a": [1, decimal.Decimal("0.1")]}, {"a": [1, "0.1"]}),
        (DriverRow(n=1, d=decimal.Decimal("2.0")), {"n": 1, "d": "2.0"}),
        ((1, 2), [1, 2]),
    ],
)
def test_one_reading_rule(value: Any, json: Any) -> None:
    assert to_json_value(value) == json


@pytest.mark.parametrize(("value", "number"), [(5, 5), (5.0, 5), (" -7 ", -7), ("+8", 8)])
def test_as_int(value: Any, number: int) -> None:
    assert as_int(value) == number


@pytest.mark.parametrize("value", [True, 1.5, "1.5", "seven", None, [1]])
def test_as_int_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match="is not an integer"):
        as_int(value)


def test_integer_ranges() -> None:
    assert INT_RANGES[8] == (-128, 127) and INT_RANGES[64] == (-(2**63), 2**63 - 1)


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2024-05-06T07:08:09Z", dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)),
        ("2024-05-06 07:08:09", dt.datetime(2024, 5, 6, 7, 8, 9)),
        (1714979289, dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)),
        (1714979289000, dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)),  # epoch milliseconds
    ],
)
def test_parse_datetime(value: Any, moment: dt.datetime) -> None:
    assert parse_datetime(value) == moment


@pytest.mark.parametrize("value", [True, "yesterday", [2024]])
def test_parse_datetime_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_datetime(value)


def test_postgres_row_builder_converts_and_range_checks() -> None:
    columns = [Column("id", "int4", "integer", True), Column("at", "timestamptz", "timestamptz", True)]
    build = row_builder(("id", "at"), columns)
    assert build({"id": "7", "at": "2024-05-06T07:08:09Z"}) == (7, dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    with pytest.raises(ValueError, match="out of range"):
        build({"id": 2**31, "at": None})
    with pytest.raises(ValueError, match="is not an integer"):
        build({"id": True, "at": None})


@pytest.mark.parametrize(
    "value",
    [7, "text", dt.datetime(2024, 5, 6, tzinfo=dt.UTC), dt.date(2024, 5, 6), decimal.Decimal("1.50"), uuid.uuid4()],
)
def test_postgres_cursor_values_survive_json(value: Any) -> None:
    assert decode_cursor(encode_cursor(value)) == value


@pytest.mark.parametrize(
    "module", [CONNECTORS / "values.py", CONNECTORS / "postgresql" / "types.py", CONNECTORS / "trino" / "types.py"]
)
def test_conversion_modules_import_no_driver(module: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & DRIVERS
