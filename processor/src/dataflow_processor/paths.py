"""gjson-like field paths, compiled once.

Syntax (a subset of gjson, which the original used):

* segments are separated by ``.``; ``\\.`` is a literal dot inside a key (``a\\.b`` is key ``a.b``);
* a leading ``$.`` or ``$`` is always stripped (the original stripped it in some transformations
  only — a bug);
* a numeric segment indexes an array (``items.0.sku``); on an object it is an ordinary key;
* ``#`` means every element of an array (``items.#.sku`` → list of skus); a final ``#`` is the
  array's length, as in gjson;
* ``*`` and ``?`` inside a segment match object keys glob-style (``user.pass*``).

Bracket indices (``items[0]``) are not gjson syntax and are not supported (a ``[`` is a key char).
A path without wildcards is *simple*; its getter is a chain of dict/list lookups built once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def strip_root(text: str) -> str:
    """Remove a leading ``$.`` or ``$`` (the JSONPath-looking root the docs use)."""
    text = text.strip()
    if text.startswith("$."):
        return text[2:]
    if text.startswith("$"):
        return text[1:]
    return text


def split_path(text: str) -> tuple[str, ...]:
    """Split on unescaped dots; ``\\.`` becomes a literal dot, ``\\\\`` a backslash."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if ch == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current))
    return tuple(segments)


def _is_glob(segment: str) -> bool:
    return "*" in segment or "?" in segment


def _step(node: Any, segment: str) -> Any:
    if isinstance(node, dict):
        return node.get(segment, MISSING)
    if isinstance(node, list) and segment.isdigit():
        index = int(segment)
        return node[index] if index < len(node) else MISSING
    return MISSING


class Path:
    """A compiled path. ``get`` reads, ``set`` writes (creating objects), ``delete`` removes."""

    __slots__ = ("get", "last", "segments", "simple", "text")

    def __init__(self, text: str) -> None:
        self.text = strip_root(text)
        if not self.text:
            raise ValueError("empty field path")
        self.segments = split_path(self.text)
        if any(s == "" for s in self.segments):
            raise ValueError(f"empty segment in field path {text!r}")
        self.simple = not any(s == "#" or _is_glob(s) for s in self.segments)
        self.last = self.segments[-1]
        self.get: Callable[[Any], Any] = self._compile_getter()

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    # ------------------------------------------------------------------ reading

    def _compile_getter(self) -> Callable[[Any], Any]:
        segments = self.segments
        if self.simple and len(segments) == 1 and not segments[0].isdigit():
            key = segments[0]

            def get_one(obj: Any) -> Any:
                if isinstance(obj, dict):
                    return obj.get(key, MISSING)
                return MISSING

            return get_one
        if self.simple:

            def get_simple(obj: Any) -> Any:
                node = obj
                for segment in segments:
                    node = _step(node, segment)
                    if node is MISSING:
                        return MISSING
                return node

            return get_simple
        return lambda obj: self._get_wild(obj, 0)

    def _get_wild(self, node: Any, start: int) -> Any:
        for i in range(start, len(self.segments)):
            segment = self.segments[i]
            if segment == "#":
                if not isinstance(node, list):
                    return MISSING
                if i == len(self.segments) - 1:
                    return len(node)
                results = [self._get_wild(item, i + 1) for item in node]
                return [r for r in results if r is not MISSING]
            if _is_glob(segment) and isinstance(node, dict):
                for key in node:
                    if fnmatch.fnmatchcase(key, segment):
                        node = node[key]
                        break
                else:
                    return MISSING
                continue
            node = _step(node, segment)
            if node is MISSING:
                return MISSING
        return node

    def locate(self, obj: Any) -> list[tuple[Any, str | int]]:
        """Every existing ``(container, key)`` the path designates (wildcards expanded)."""
        found: list[tuple[Any, str | int]] = []
        self._locate(obj, 0, found)
        return found

    def _locate(self, node: Any, i: int, found: list[tuple[Any, str | int]]) -> None:
        segment = self.segments[i]
        final = i == len(self.segments) - 1
        keys: list[str | int]
        if segment == "#":
            keys = list(range(len(node))) if isinstance(node, list) else []
        elif isinstance(node, dict):
            keys = (
                [k for k in node if fnmatch.fnmatchcase(k, segment)]
                if _is_glob(segment)
                else ([segment] if segment in node else [])
            )
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            keys = [int(segment)]
        else:
            keys = []
        for key in keys:
            if final:
                found.append((node, key))
            else:
                self._locate(node[key], i + 1, found)

    # ------------------------------------------------------------------ writing

    def set(self, obj: dict[str, Any], value: Any) -> None:
        """Set the value, creating intermediate objects; overwrites an existing value."""
        if not self.simple:
            for container, key in self.locate(obj):
                container[key] = value
            return
        node: Any = obj
        for segment in self.segments[:-1]:
            nxt = _step(node, segment)
            if not isinstance(nxt, (dict, list)):
                if not isinstance(node, dict):
                    raise ValueError(f"cannot set {self.text!r}: {segment!r} is inside a non-object")
                nxt = node[segment] = {}
            node = nxt
        if isinstance(node, list):
            index = int(self.last) if self.last.isdigit() else -1
            if 0 <= index < len(node):
                node[index] = value
                return
            raise ValueError(f"cannot set {self.text!r}: index out of range")
        node[self.last] = value

    def delete(self, obj: Any) -> int:
        """Remove every designated value; return how many were removed (missing paths → 0)."""
        located = self.locate(obj)
        # delete list elements from the highest index down so earlier indexes stay valid
        located.sort(key=lambda ck: ck[1] if isinstance(ck[1], int) else -1, reverse=True)
        for container, key in located:
            del container[key]
        return len(located)


@lru_cache(maxsize=1024)
def compile_path(text: str) -> Path:
    """Compile (and cache) a path; raises ``ValueError`` on an empty path or segment."""
    return Path(text)
