"""``select``: keep only ``fields``, as a **flat** object keyed by each path's last segment.

``user.id`` → key ``id``. Missing paths are skipped; if none matched, the record passes unchanged
(original behaviour). Colliding last segments: the later field wins. ``$.`` is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dataflow_processor.paths import MISSING, compile_path
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import SelectConfig
from dataflow_processor.transforms.base import FailFn, Transform


class SelectTransform(Transform):
    type_name = "select"

    def __init__(self, config: SelectConfig, index: int) -> None:
        super().__init__(index)
        self.paths = [compile_path(field) for field in config.fields]
        simple = all(p.simple and len(p.segments) == 1 for p in self.paths)
        self._keys = tuple(p.last for p in self.paths) if simple else None
        self._pick = _picker(self._keys) if self._keys else None

    def _select(self, value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for path in self.paths:
            found = path.get(value)
            if found is not MISSING:
                out[path.last] = found
        return out or value

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        keys, pick = self._keys, self._pick
        if keys is not None and pick is not None:
            for record in batch:
                value = record.value
                try:
                    record.value = pick(value)  # every field present: the usual case
                except KeyError:
                    selected = {k: value[k] for k in keys if k in value}  # type: ignore[operator,index]
                    if selected:
                        record.value = selected
            return batch
        out = []
        for record in batch:
            try:
                record.value = self._select(record.value)  # type: ignore[arg-type]
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out


def _picker(keys: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    """``value → {k: value[k] for k in keys}`` as one dict display (raises ``KeyError`` if one is missing).

    Generated once per transformation; the keys are bound as default arguments by position, so no
    field name ever becomes code. Later duplicates win, as in the comprehension.
    """
    names = [f"k{i}" for i in range(len(keys))]
    params = ", ".join(f"{name}=K[{i}]" for i, name in enumerate(names))
    body = ", ".join(f"{name}: value[{name}]" for name in names)
    namespace: dict[str, Any] = {"K": keys}
    exec(compile(f"def pick(value, {params}):\n    return {{{body}}}", "<select picker>", "exec"), namespace)
    return namespace["pick"]  # type: ignore[no-any-return]
