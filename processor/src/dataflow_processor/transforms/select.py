"""``select``: keep only ``fields``, as a **flat** object keyed by each path's last segment.

``user.id`` → key ``id``. Missing paths are skipped; if none matched, the record passes unchanged
(original behaviour). Colliding last segments: the later field wins. ``$.`` is accepted.
"""

from __future__ import annotations

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

    def _select(self, value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for path in self.paths:
            found = path.get(value)
            if found is not MISSING:
                out[path.last] = found
        return out or value

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        keys = self._keys
        if keys is not None:
            for record in batch:
                value = record.value
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
