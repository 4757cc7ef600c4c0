"""``snakeCase``: rename object keys to snake_case; ``deep`` recurses into objects and arrays.

The original's algorithm, kept exactly: an uppercase letter is lowercased, and an ``_`` goes before
it when the previous character was lowercase or a digit, or was uppercase and the next one is
lowercase. Other characters (``_``, ``-``, space…) are copied and reset that state.
``userID`` → ``user_id``, ``XMLHttpRequest`` → ``xml_http_request``, ``Item2Name`` → ``item2_name``.
Keys that collide after renaming: the later one wins. Conversions are cached per key text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import CaseConfig
from dataflow_processor.transforms.base import FailFn, Transform


@lru_cache(maxsize=65536)
def to_snake(key: str) -> str:
    out: list[str] = []
    previous = ""  # "lower" (lowercase or digit), "upper", or "" (start / separator)
    last = len(key) - 1
    for i, ch in enumerate(key):
        if ch.isupper():
            following = key[i + 1] if i < last else ""
            if previous == "lower" or (previous == "upper" and following.islower()):
                out.append("_")
            out.append(ch.lower())
            previous = "upper"
        elif ch.islower() or ch.isdigit():
            out.append(ch)
            previous = "lower"
        else:
            out.append(ch)
            previous = ""
    return "".join(out)


def rename_keys(value: Any, convert: Callable[[str], str], deep: bool) -> Any:
    """Rename the keys of ``value`` (an object) — recursively through objects and arrays if ``deep``."""
    if isinstance(value, dict):
        if deep:
            return {convert(k): rename_keys(v, convert, True) for k, v in value.items()}
        return {convert(k): v for k, v in value.items()}
    if deep and isinstance(value, list):
        return [rename_keys(item, convert, True) for item in value]
    return value


class CaseTransform(Transform):
    """Shared body of snakeCase and camelCase."""

    convert: Callable[[str], str]

    def __init__(self, config: CaseConfig, index: int) -> None:
        super().__init__(index)
        self.deep = config.deep

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        convert = type(self).convert
        deep = self.deep
        out = []
        for record in batch:
            try:
                record.value = rename_keys(record.value, convert, deep)
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out


class SnakeCaseTransform(CaseTransform):
    type_name = "snakeCase"
    convert = staticmethod(to_snake)
