"""PostgreSQL values: JSON value → what asyncpg's binary codec of a column type takes (the sink),
the table's column descriptions, the generated row builder, and the source's cursor values as
JSON. Pure functions: no driver import, so all of it is tested without a server.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime, to_json_value

# ----------------------------------------------------------------------------- value conversion
# JSON value → what asyncpg's binary codec of the column type accepts. Raise ValueError/TypeError
# for a value that cannot be that type: the record goes to the errors sink.

Converter = Callable[[Any], Any]
_INT_RANGES = {"int2": INT_RANGES[16], "int4": INT_RANGES[32], "int8": INT_RANGES[64]}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _to_int(lo: int, hi: int) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        number = as_int(value)
        if not lo <= number <= hi:
            raise ValueError(f"integer {number} out of range")
        return number

    return convert


def _to_float(value: Any) -> Any:
    if type(value) is float or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _to_numeric(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    try:
        result = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    return result


def _to_text(value: Any) -> Any:
    if type(value) is str or value is None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json_text(value)


def _to_bool(value: Any) -> Any:
    if type(value) is bool or value is None:
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "t", "f", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "t", "1", "yes"}
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected a boolean, got {value!r}")


def _to_json(value: Any) -> Any:
    return None if value is None else json_text(value)


def _to_timestamptz(value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _to_timestamp(value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(value)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed


def _to_date(value: Any) -> Any:
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, str):
        text = value.strip()
        return dt.date.fromisoformat(text[:10]) if len(text) > 10 else dt.date.fromisoformat(text)
    raise TypeError(f"expected a date, got {type(value).__name__}")


def _to_uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _to_bytea(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string for bytea, got {type(value).__name__}")


def _last_value_cache(convert: Converter) -> Converter:
    """Remember the last conversion: a batch stamped by ``timestamp`` shares one string."""
    last_in: Any = None
    last_out: Any = None

    def cached(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is last_in and value is not None:
            return last_out
        result = convert(value)
        last_in, last_out = value, result
        return result

    return cached


_BINARY_CONVERTERS: dict[str, Converter] = {
    **{name: _to_int(lo, hi) for name, (lo, hi) in _INT_RANGES.items()},
    "float4": _to_float,
    "float8": _to_float,
    "numeric": _to_numeric,
    **dict.fromkeys(_TEXT_TYPES, _to_text),
    "bool": _to_bool,
    "json": _to_json,
    "jsonb": _to_json,
    "timestamptz": _to_timestamptz,
    "timestamp": _to_timestamp,
    "date": _to_date,
    "uuid": _to_uuid,
    "bytea": _to_bytea,
}


# The JSON type a column's binary codec takes as is: the generated row builder checks it inline and
# calls the converter only for other values (and ints only after a range check).
_NATIVE_TYPE: dict[str, type] = {
    **dict.fromkeys(_INT_RANGES, int),
    "float4": float,
    "float8": float,
    **dict.fromkeys(_TEXT_TYPES, str),
    "bool": bool,
}


def row_builder(keys: tuple[str, ...], columns: list[Column]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function ``value dict → row tuple`` for these keys, generated once per key set.

    Per value it is one dict lookup and an inline type check; a converter call only where the
    JSON type is not already what the codec takes. Names in the generated code are indexes into
    ``K`` (the keys) and ``C`` (the converters): no identifier or value ever becomes code.
    """
    lines = ["def build(value):"]
    names = []
    for i, column in enumerate(columns):
        name = f"v{i}"
        names.append(name)
        lines.append(f"    {name} = value[K[{i}]]")
        native = _NATIVE_TYPE.get(column.type_name)
        if native is int:
            lo, hi = _INT_RANGES[column.type_name]
            lines.append(f"    if type({name}) is not int or not {lo} <= {name} <= {hi}: {name} = C[{i}]({name})")
        elif native is not None:
            lines.append(f"    if type({name}) is not T[{i}]: {name} = C[{i}]({name})")
        else:
            lines.append(f"    {name} = C[{i}]({name})")
    lines.append(f"    return ({', '.join(names)},)")
    namespace: dict[str, Any] = {
        "K": keys,
        "C": tuple(c.converter for c in columns),
        "T": tuple(_NATIVE_TYPE.get(c.type_name) for c in columns),
    }
    exec(compile("\n".join(lines), "<postgresql row builder>", "exec"), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # pg_type.typname (e.g. int8, timestamptz, _int4)
    sql_type: str  # format_type() text, used for casts (e.g. "character varying(20)")
    writable: bool

    @property
    def binary(self) -> bool:
        """asyncpg's binary COPY can carry this type from our converted values."""
        return self.type_name in _BINARY_CONVERTERS

    @property
    def converter(self) -> Converter:
        if self.type_name in ("timestamptz", "timestamp"):  # one converter (and cache) per column
            return _last_value_cache(_BINARY_CONVERTERS[self.type_name])
        # other types (enums, arrays, inet, interval…) travel as text and are cast by the server
        return _BINARY_CONVERTERS.get(self.type_name, _to_text)

    @property
    def param_type(self) -> str:
        return f"{self.sql_type}[]" if self.binary else "text[]"




def row_to_json(value: Any) -> Any:
    """A value read from PostgreSQL as a JSON-compatible value (the :mod:`.values` rule)."""
    return to_json_value(value)


def encode_cursor(value: Any) -> Any:
    """A cursor value as JSON that :func:`decode_cursor` turns back into the same Python type."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    raise TypeError(f"cannot keep a {type(value).__name__} as a cursor")


def decode_cursor(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind == "datetime":
            return dt.datetime.fromisoformat(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "decimal":
            return decimal.Decimal(text)
        if kind == "uuid":
            return uuid.UUID(text)
    return value
