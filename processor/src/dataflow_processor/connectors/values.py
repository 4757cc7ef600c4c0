"""Values read from a table (Trino rows, Iceberg/Arrow rows) in their JSON-friendly form.

One rule for every polling source, so a record looks the same whichever store it came from:
``decimal`` → string (exact), ``date`` → ``YYYY-MM-DD``, ``timestamp`` → ISO 8601 with ``T`` (and
its offset when zoned), ``time`` → ``HH:MM:SS[.ffffff]``, binary → base64, ``uuid`` → string, NaN and
infinities → ``"nan"``/``"inf"``/``"-inf"``, lists/maps/structs → lists and objects.

:func:`parse_datetime` is the other direction, for sinks: the timestamp forms a record may carry.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from typing import Any


def to_json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
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
    return str(value)


def parse_datetime(value: Any) -> dt.datetime:
    """RFC 3339 / ISO 8601 text, or epoch seconds (``>1e11`` → milliseconds), to a datetime."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a timestamp")
