"""What an upserting sink does before its one statement per batch: keep one row per key.

Neither ``INSERT … ON CONFLICT`` (PostgreSQL) nor ``MERGE`` (Trino) may touch a target row twice
in one statement, so a batch that holds a key twice keeps only its last row: what writing the rows
one statement after another would have left.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

Row = TypeVar("Row", bound=Sequence[Any])


def last_per_key(
    items: Iterable[tuple[int, Row]],
    positions: Sequence[int],
    freeze: Callable[[list[Any]], Hashable] = tuple,
) -> list[tuple[int, Row]]:
    """``(index, row)`` items, one per key (the values at ``positions``), the last one winning, in
    index order. A key with a NULL part never conflicts, so such rows are all kept. ``freeze`` makes
    a key hashable (``tuple`` by default; a sink whose values may be lists passes a JSON encoder)."""
    last: dict[Hashable, tuple[int, Row]] = {}
    keyless = []
    for item in items:
        key = [item[1][p] for p in positions]
        if any(k is None for k in key):
            keyless.append(item)
        else:
            frozen = freeze(key)
            last.pop(frozen, None)  # re-inserted: the dict's order is the order of each key's last row
            last[frozen] = item
    return sorted([*keyless, *last.values()], key=lambda item: item[0])
