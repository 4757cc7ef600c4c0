"""Values between records and tables: one rule for what a polling source emits, and the shared
checks a sink applies before a value travels to its column. No driver is imported here.

**Reading** (:func:`to_json_value`) — one rule for every polling source (PostgreSQL, Trino,
Nessie), so a record looks the same whichever store it came from:

* ``decimal``/``numeric`` → its exact text, scale kept (``12.50`` → ``"12.50"``, ``7`` → ``"7"``):
  a JSON number is read as a binary float by most consumers, and money must not become
  ``12.499999…``; the sinks accept numeric text wherever they accept a number, so a pipeline that
  writes it to a ``numeric``/``decimal``/integer column still gets the exact value;
* integers and finite floats → JSON numbers; NaN and infinities → ``"nan"``/``"inf"``/``"-inf"``
  (JSON has no literal for them, and ``null`` would lose the value);
* ``date`` → ``YYYY-MM-DD``, ``timestamp`` → ISO 8601 with ``T`` (and its offset when zoned),
  ``time`` → ``HH:MM:SS[.ffffff]``, an interval (``timedelta``) → its length in seconds;
* binary → base64, ``uuid`` and network addresses → text;
* lists/arrays → lists; maps, structs and rows (anything with ``items()``, Trino's named rows) →
  objects with text keys.

**Writing**: :data:`INT_RANGES` (the signed integer widths), :func:`as_int` (the integer a value
stands for: ints, integral floats, digit strings; never booleans) and :func:`parse_datetime` (the
timestamp forms a record may carry: RFC 3339 / ISO 8601 text, epoch seconds or milliseconds).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import re
import uuid
from typing import Any

INT_RANGES: dict[int, tuple[int, int]] = {bits: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)}
"""Signed integer range by width in bits (``tinyint``/``int2``/``int4``/``int8`` and their likes)."""

_DIGITS = re.compile(r"\s*[+-]?\d+\s*")


def to_json_value(value: Any) -> Any:
    """A value read from a table in its JSON form (the rule in the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    names = getattr(value, "_names", None)  # trino's NamedRowTuple
    if isinstance(value, tuple) and names and all(names):
        return {name: to_json_value(v) for name, v in zip(names, value, strict=False)}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    items = getattr(value, "items", None)  # a driver's row or composite value (asyncpg.Record)
    if callable(items):
        return {str(k): to_json_value(v) for k, v in items()}
    return str(value)


def as_int(value: Any) -> int:
    """The integer ``value`` stands for: an int, an integral float, or a string of digits.

    ``ValueError`` for anything else (booleans too). The caller checks the range (:data:`INT_RANGES`).
    """
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def parse_datetime(value: Any) -> dt.datetime:
    """RFC 3339 / ISO 8601 text, or epoch seconds (``>1e11`` → milliseconds), to a datetime.

    ``ValueError`` for anything else.
    """
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value  # epoch milliseconds or seconds
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a timestamp") from None
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")
