"""Go time layouts and named formats, compiled once into a formatter of "now".

The original passed ``format`` to Go's ``time.Format``: a *layout* built from the reference time
``Mon Jan 2 15:04:05 MST 2006`` (e.g. ``2006-01-02 15:04:05``), and a name like ``RFC3339`` was
printed literally (a bug). Here names are mapped:

* Go's named layouts: ``RFC3339`` (default), ``RFC3339Nano``, ``ANSIC``, ``UnixDate``, ``RubyDate``,
  ``RFC822``, ``RFC822Z``, ``RFC850``, ``RFC1123``, ``RFC1123Z``, ``Kitchen``, ``Stamp``,
  ``StampMilli``, ``StampMicro``, ``StampNano``, ``DateTime``, ``DateOnly``, ``TimeOnly``
  (names match case-insensitively);
* epoch formats ``Unix``, ``UnixMilli``, ``UnixMicro``, ``UnixNano`` produce a JSON **number**;
* anything else is a Go layout. A text with no layout element, or a name-like word that is not a
  known name (``ISO8601``), is rejected: it would print (mostly) itself, as ``"RFC3339"`` did in
  the original.

Times are UTC (the pod clock), so ``Z07:00`` prints ``Z`` and ``MST`` prints ``UTC``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

NAMED_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}
EPOCH_DIVISORS = {"Unix": 10**9, "UnixMilli": 10**6, "UnixMicro": 10**3, "UnixNano": 1}
_NAMES = {name.lower(): name for name in [*NAMED_LAYOUTS, *EPOCH_DIVISORS]}

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

Piece = Callable[[datetime, int], str]  # (utc datetime, nanoseconds within the second) -> text
_ZONES = ("-070000", "-07:00:00", "-0700", "-07:00", "-07")


def _hour12(dt: datetime) -> int:
    return dt.hour % 12 or 12


def _fraction(digits: int, trim: bool, sep: str) -> Piece:
    def piece(_dt: datetime, nanos: int) -> str:
        text = f"{nanos:09d}"[:digits]
        if trim:
            text = text.rstrip("0")
            return sep + text if text else ""
        return sep + text

    return piece


def _zone(layout_token: str) -> Piece:
    # Always UTC: "Z…" forms print "Z", numeric forms print a zero offset of the same shape.
    if layout_token.startswith("Z"):
        return lambda _dt, _n: "Z"
    zero = layout_token.replace("-", "+").replace("07", "00")
    return lambda _dt, _n: zero


def _tokens() -> list[tuple[str, Piece]]:
    """Layout elements, longest first where one is a prefix of another (Go's ``nextStdChunk``)."""
    return [
        ("January", lambda dt, _n: _MONTHS[dt.month - 1]),
        ("Jan", lambda dt, _n: _MONTHS[dt.month - 1][:3]),
        ("Monday", lambda dt, _n: _DAYS[dt.weekday()]),
        ("Mon", lambda dt, _n: _DAYS[dt.weekday()][:3]),
        ("MST", lambda _dt, _n: "UTC"),
        ("2006", lambda dt, _n: f"{dt.year:04d}"),
        ("002", lambda dt, _n: f"{dt.timetuple().tm_yday:03d}"),
        ("__2", lambda dt, _n: f"{dt.timetuple().tm_yday:>3d}"),
        ("_2", lambda dt, _n: f"{dt.day:>2d}"),
        ("01", lambda dt, _n: f"{dt.month:02d}"),
        ("02", lambda dt, _n: f"{dt.day:02d}"),
        ("03", lambda dt, _n: f"{_hour12(dt):02d}"),
        ("04", lambda dt, _n: f"{dt.minute:02d}"),
        ("05", lambda dt, _n: f"{dt.second:02d}"),
        ("06", lambda dt, _n: f"{dt.year % 100:02d}"),
        ("15", lambda dt, _n: f"{dt.hour:02d}"),
        ("1", lambda dt, _n: str(dt.month)),
        ("2", lambda dt, _n: str(dt.day)),
        ("3", lambda dt, _n: str(_hour12(dt))),
        ("4", lambda dt, _n: str(dt.minute)),
        ("5", lambda dt, _n: str(dt.second)),
        ("PM", lambda dt, _n: "PM" if dt.hour >= 12 else "AM"),
        ("pm", lambda dt, _n: "pm" if dt.hour >= 12 else "am"),
        *[(z, _zone(z)) for z in _ZONES],
        *[("Z" + z[1:], _zone("Z" + z[1:])) for z in _ZONES],
    ]


_TOKENS = _tokens()


def compile_layout(layout: str) -> list[Piece | str]:
    """Split a Go layout into literal strings and formatting pieces."""
    parts: list[Piece | str] = []
    literal: list[str] = []
    found = False
    i = 0
    while i < len(layout):
        ch = layout[i]
        # fractional seconds: "." or "," followed by a run of 0s or 9s not followed by a digit
        if ch in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
            digit = layout[i + 1]
            j = i + 1
            while j < len(layout) and layout[j] == digit:
                j += 1
            if j >= len(layout) or not layout[j].isdigit():
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_fraction(j - i - 1, digit == "9", "." if ch == "." else ","))
                found = True
                i = j
                continue
        for token, piece in _TOKENS:
            if layout.startswith(token, i):
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(piece)
                found = True
                i += len(token)
                break
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    literal_letters = any(isinstance(p, str) and any(c.isalpha() for c in p) for p in parts)
    looks_like_a_name = layout.isalnum() and layout[0].isalpha() and literal_letters
    if not found or looks_like_a_name:
        raise ValueError(
            f"format {layout!r} is neither a named format ({', '.join(sorted(_NAMES.values()))}) "
            "nor a Go layout (e.g. '2006-01-02 15:04:05')"
        )
    return parts


def compile_format(fmt: str) -> Callable[[int], Any]:
    """Return ``render(now_ns) -> str | int`` for a named format or Go layout."""
    name = _NAMES.get(fmt.strip().lower())
    if name in EPOCH_DIVISORS:
        divisor = EPOCH_DIVISORS[name]
        return lambda now_ns: now_ns // divisor
    layout = NAMED_LAYOUTS[name] if name else fmt
    parts = compile_layout(layout)

    def render(now_ns: int) -> str:
        seconds, nanos = divmod(now_ns, 10**9)
        dt = datetime.fromtimestamp(seconds, UTC)
        return "".join(p if isinstance(p, str) else p(dt, nanos) for p in parts)

    return render


def now_ns() -> int:
    return time.time_ns()
