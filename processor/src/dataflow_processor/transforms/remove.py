"""``remove``: delete each of ``fields`` (nested paths, array indexes and wildcards supported).

Missing paths are skipped; ``$.`` is accepted.
"""

from __future__ import annotations

from dataflow_processor.paths import compile_path
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import RemoveConfig
from dataflow_processor.transforms.base import FailFn, Transform


class RemoveTransform(Transform):
    type_name = "remove"

    def __init__(self, config: RemoveConfig, index: int) -> None:
        super().__init__(index)
        self.paths = [compile_path(field) for field in config.fields]
        simple = all(p.simple and len(p.segments) == 1 for p in self.paths)
        self._keys = tuple(p.last for p in self.paths) if simple else None

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        keys = self._keys
        if keys is not None:
            for record in batch:
                value = record.value
                for key in keys:
                    value.pop(key, None)  # type: ignore[union-attr]
            return batch
        out = []
        for record in batch:
            try:
                for path in self.paths:
                    path.delete(record.value)
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out
