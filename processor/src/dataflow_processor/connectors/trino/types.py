"""Trino values: a record's value checked and normalized for a column type — as a typed SQL
literal (:func:`render_literal`, the source's key filter) or as it travels in the sink's JSON batch
(:func:`json_value`, :func:`column_plan`) — and the column types ``autoCreateTable`` infers. Pure
functions: no driver import, so all of it is tested without a server.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from dataflow_processor.connectors.trino.table import quote_ident, quote_string
from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime

_INT_RANGES = {
    "tinyint": INT_RANGES[8],
    "smallint": INT_RANGES[16],
    "integer": INT_RANGES[32],
    "int": INT_RANGES[32],
    "bigint": INT_RANGES[64],
}


def base_type(trino_type: str) -> str:
    """``varchar(10)`` → ``varchar``; ``timestamp(3) with time zone`` → ``timestamp with time zone``."""
    t = trino_type.strip().lower()
    head = re.sub(r"\(.*?\)", "", t, count=1) if t.startswith(("timestamp", "time")) else t.split("(", 1)[0]
    return " ".join(head.split())


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"boolean {value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a number")


def _float_literal(kind: str, number: float) -> str:
    if math.isnan(number):
        return f"CAST(nan() AS {kind.upper()})"
    if math.isinf(number):
        return f"CAST({'-' if number < 0 else ''}infinity() AS {kind.upper()})"
    return f"{kind.upper()} '{number!r}'"


def _timestamp_literal(value: Any, with_zone: bool) -> str:
    moment = parse_datetime(value)
    if with_zone:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        offset = moment.strftime("%z")
        zone = f"{offset[:3]}:{offset[3:]}" if offset else "UTC"
        return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')} {zone}'"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _date_literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return f"DATE '{value.date().isoformat()}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return f"DATE '{dt.date.fromisoformat(value.strip()).isoformat()}'"
    return f"DATE '{parse_datetime(value).date().isoformat()}'"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def render_literal(value: Any, trino_type: str) -> str:
    """A SQL literal of ``value`` for a column of ``trino_type``; ``ValueError`` when it does not fit.

    The literal text is always produced from a parsed, typed Python value (an ``int``, a ``float``'s
    ``repr``, a ``Decimal``, a validated date) or is a quoted string with its quotes doubled.
    """
    if value is None:
        return "NULL"
    kind = base_type(trino_type)
    if kind in _INT_RANGES:
        number = as_int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for {kind}")
        return str(number) if kind == "integer" else f"{kind.upper()} '{number}'"
    if kind in ("double", "real"):
        return _float_literal(kind, _as_float(value))
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError(f"boolean {value!r} is not a decimal")
        try:
            exact = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal") from None
        if not exact.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        return f"DECIMAL '{exact}'"
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ValueError(f"{value!r} is not a boolean")
    if kind in ("varchar", "char"):
        if isinstance(value, (dict, list)):
            return quote_string(orjson.dumps(value).decode())
        if isinstance(value, bool):
            return quote_string("true" if value else "false")
        if isinstance(value, (str, int, float, decimal.Decimal)):
            return quote_string(str(value))
        return quote_string(orjson.dumps(value, default=str).decode())
    if kind == "json":
        return f"JSON {quote_string(orjson.dumps(value).decode())}"
    if kind == "timestamp":
        return _timestamp_literal(value, with_zone=False)
    if kind == "timestamp with time zone":
        return _timestamp_literal(value, with_zone=True)
    if kind == "date":
        return _date_literal(value)
    if kind in ("time", "time with time zone"):
        text = value.isoformat() if isinstance(value, dt.time) else str(value)
        if not re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?( ?[+-]\d{2}:\d{2})?", text):
            raise ValueError(f"{value!r} is not a time of day")
        return f"TIME '{text}'"
    if kind == "uuid":
        return f"UUID '{uuid.UUID(str(value))}'"
    if kind == "varbinary":
        if isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        elif isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError(f"{value!r} is not base64") from None
        else:
            raise ValueError(f"{value!r} is not binary (base64 text expected)")
        return f"X'{raw.hex()}'"
    if kind in ("array", "map", "row"):
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{value!r} does not fit {trino_type}")
        if not re.fullmatch(r"[a-z0-9_(), \"]+", trino_type.lower()):
            raise ValueError(f"unsupported column type {trino_type}")
        return f"CAST(JSON {quote_string(_json_text(value))} AS {trino_type})"
    raise ValueError(f"unsupported column type {trino_type}")


_VIA_TEXT = {  # column type → SQL that turns the text field u."c" into the column's value
    "timestamp": "CAST({field} AS {type})",
    "timestamp with time zone": "CAST({field} AS {type})",
    "date": "CAST({field} AS {type})",
    "time": "CAST({field} AS {type})",
    "time with time zone": "CAST({field} AS {type})",
    "uuid": "CAST({field} AS {type})",
    "decimal": "CAST({field} AS {type})",
    "varbinary": "from_hex({field})",
    "json": "json_parse({field})",  # a JSON null inside the batch would be JSON 'null', not NULL
    "varchar": "{field}",
    "char": "{field}",
}
_JSON_NATIVE = {"tinyint", "smallint", "integer", "int", "bigint", "double", "real", "boolean"}


def column_plan(name: str, trino_type: str) -> tuple[str, str]:
    """(field type in the ``ROW`` of the JSON batch, select expression) for one column."""
    kind = base_type(trino_type)
    field = f"u.{quote_ident(name)}"
    if kind in _VIA_TEXT:
        return "varchar", _VIA_TEXT[kind].format(field=field, type=trino_type)
    if kind in _JSON_NATIVE or kind in ("array", "map", "row"):
        if not re.fullmatch(r"[a-z0-9_(), \"]+", trino_type.lower()):
            raise ValueError(f"unsupported column type {trino_type}")
        return trino_type, field
    raise ValueError(f"unsupported column type {trino_type}")


def json_value(value: Any, trino_type: str) -> Any:
    """``value`` checked and normalized for its column, as it travels in the JSON batch.

    ``ValueError`` when it does not fit. Same acceptance rules as :func:`render_literal`.
    """
    if value is None:
        return None
    kind = base_type(trino_type)
    if kind in _INT_RANGES:
        number = as_int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for {kind}")
        return number
    if kind in ("double", "real"):
        real = _as_float(value)
        if math.isnan(real):
            return "NaN"
        if math.isinf(real):
            return "Infinity" if real > 0 else "-Infinity"
        return real
    if kind == "decimal":
        return render_literal(value, trino_type)[len("DECIMAL '") : -1]
    if kind == "boolean":
        return render_literal(value, trino_type) == "true"
    if kind in ("varchar", "char"):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, decimal.Decimal)):
            return str(value)
        return orjson.dumps(value, default=str).decode()
    if kind == "json":
        return orjson.dumps(value).decode()
    if kind in ("timestamp", "timestamp with time zone", "date", "time", "time with time zone", "uuid"):
        literal = render_literal(value, trino_type)  # validated typed literal: KIND '<text>'
        return literal[literal.index("'") + 1 : -1]
    if kind == "varbinary":
        return render_literal(value, trino_type)[2:-1]  # X'<hex>'
    if kind in ("array", "map", "row"):
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{value!r} does not fit {trino_type}")
        return value
    raise ValueError(f"unsupported column type {trino_type}")


def infer_column_types(values: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Column types for ``autoCreateTable`` from a batch: first non-null value of each key decides.

    ``bool`` → ``boolean``, ``int`` → ``bigint``, ``float`` → ``double``, everything else (strings,
    objects and lists as JSON text, keys only ever null) → ``varchar``. Order: first appearance.
    """
    types: dict[str, str] = {}
    for value in values:
        for key, item in value.items():
            if types.get(key, "varchar?") != "varchar?":
                continue
            if item is None:
                types[key] = "varchar?"
            elif isinstance(item, bool):
                types[key] = "boolean"
            elif isinstance(item, int) and INT_RANGES[64][0] <= item <= INT_RANGES[64][1]:
                types[key] = "bigint"
            elif isinstance(item, float):
                types[key] = "double"
            else:
                types[key] = "varchar"
    return {key: ("varchar" if kind == "varchar?" else kind) for key, kind in types.items()}
