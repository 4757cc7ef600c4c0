"""``filter``: keep a record iff ``condition`` holds (see :mod:`dataflow_processor.conditions`).

``$.`` is always accepted (the original's code dropped everything for the documented
``$.active``). Comparisons and CEL work too. A dropped record is acknowledged at once.
"""

from __future__ import annotations

from dataflow_processor.conditions import compile_condition
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import FilterConfig
from dataflow_processor.transforms.base import FailFn, Transform


class FilterTransform(Transform):
    type_name = "filter"

    def __init__(self, config: FilterConfig, index: int) -> None:
        super().__init__(index)
        self.condition = compile_condition(config.condition)

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        predicate = self.condition.predicate
        try:
            return [record for record in batch if predicate(record.value)]
        except Exception:
            pass  # find the offending record(s) one by one
        out = []
        for record in batch:
            try:
                keep = predicate(record.value)
            except Exception as exc:
                fail(record, exc)
                continue
            if keep:
                out.append(record)
        return out
