"""Normalization of the two accepted shapes of a typed block.

Canonical (like Kubernetes volume sources): ``{type: kafka, kafka: {...}}``.
Newer original (1.0.x): ``{type: kafka, config: {...}}`` — accepted and rewritten to the canonical
shape before validation, so the rest of the processor sees one shape only. Giving both, giving a
block that does not match ``type``, or giving none, is an error naming the offending key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def normalize_typed_block(data: Any, known_types: Iterable[str], what: str) -> Any:
    """Return ``data`` with ``config`` moved under the key named by ``type``; validate the keys."""
    if not isinstance(data, dict):
        return data
    known = tuple(known_types)
    kind = data.get("type")
    if not kind:
        raise ValueError(f"{what} type is required")
    if kind not in known:
        raise ValueError(f'Unsupported value: "{kind}": supported values: {", ".join(known)}')
    out = dict(data)
    if "config" in out:
        if kind in out:
            raise ValueError(f"give either '{kind}' or 'config', not both")
        out[kind] = out.pop("config")
    stray = [k for k in known if k != kind and k in out]
    if stray:
        raise ValueError(f"{what} type is {kind!r} but block(s) {', '.join(stray)} are given")
    if out.get(kind) is None:
        raise ValueError(f"{kind} {what} configuration is required")
    return out
