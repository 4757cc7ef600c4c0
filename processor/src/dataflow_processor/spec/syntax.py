"""Syntax of the names and addresses a spec holds: Kafka brokers and topics, PostgreSQL key columns.

The admission policy (``scripts/gen_policy.py``) has the same rules as RE2 patterns, so a bad value
is refused by the API server; these checks also cover values that arrive through a ``…SecretRef``
(resolved at processor start), and they never quote the value: it may be a secret.

* A **broker** is ``host:port``: a host name (labels of letters, digits, ``_`` and inner ``-``), an
  IPv4 address, or an IPv6 address in brackets; the port is 1-65535 without leading zeros.
* A **topic** is 1-249 letters, digits, ``.``, ``_`` and ``-``, and not ``.`` or ``..`` (Kafka's rule).
* A **column name** (``keyColumn``, ``upsertVersionColumn``…) is at most 63 characters (the CRD's
  bound) without NUL; it is always quoted, so any other character is safe.
* A **conflictKey** is a comma-separated list of column names: each non-empty once trimmed, at most
  63 characters (PostgreSQL truncates longer names) and without NUL.
"""

from __future__ import annotations

import re

# Each char has one way to match (a label's inner run cannot end in '-'): linear on any input.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_BROKER = re.compile(rf"(?:\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*):{_PORT}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
MAX_COLUMN_NAME = 63


def check_brokers(brokers: list[str]) -> list[str]:
    for number, broker in enumerate(brokers, 1):
        if not _BROKER.fullmatch(broker):
            raise ValueError(
                f"entry {number} is not host:port (a host name, an IPv4 address or an [IPv6] address, "
                "a colon, and a port 1-65535)"
            )
    return brokers


def check_topic(topic: str | None) -> str | None:
    if topic and (not _TOPIC.fullmatch(topic) or topic in (".", "..")):
        raise ValueError("a topic is 1-249 letters, digits, '.', '_' or '-', and not '.' or '..'")
    return topic


def check_column_list(value: str) -> str:
    if not value.strip():
        return value
    for number, part in enumerate(value.split(","), 1):
        name = part.strip()
        if not name:
            raise ValueError(f"a comma-separated list of column names: name {number} is empty")
        if len(name) > MAX_COLUMN_NAME or "\x00" in name:
            raise ValueError(
                f"a comma-separated list of column names: name {number} is longer than {MAX_COLUMN_NAME} "
                "characters or holds a NUL"
            )
    return value


def check_column_name(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("a column name must not hold a NUL")
    return value
