"""``filter``: keep a record iff ``condition`` holds (see :mod:`dataflow_processor.conditions`).

``$.`` is always accepted. Comparisons, compound conditions on the value and the record's
metadata, and CEL work too. A dropped record is acknowledged at once; a record
whose CEL evaluation runs past its deadline fails (errors sink) and the next record goes on.
"""

from __future__ import annotations

from typing import Any

from dataflow_processor.conditions import DEFAULT_TIMEOUT, compile_condition
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import FilterConfig
from dataflow_processor.transforms.base import BuildOptions, FailFn, Transform


class FilterTransform(Transform):
    type_name = "filter"

    @classmethod
    def build(cls, config: Any, index: int, options: BuildOptions) -> Transform:
        return cls(config, index, options.condition_timeout)

    def __init__(self, config: FilterConfig, index: int, condition_timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(index)
        self.condition = compile_condition(
            config.condition, field=f"{self.field_path}.condition", timeout=condition_timeout
        )
        self.runs_cel = self.condition.kind == "cel"

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        condition = self.condition
        if condition.record_predicate is not None:  # metadata paths: only then is metadata read
            matches = condition.record_predicate
            try:
                return [record for record in batch if matches(record.value, record.metadata)]
            except Exception:
                return self._one_by_one(batch, fail)
        predicate = condition.predicate
        if not self.runs_cel:
            try:
                return [record for record in batch if predicate(record.value)]
            except Exception:
                pass  # find the offending record(s) one by one
        return self._one_by_one(batch, fail)

    def _one_by_one(self, batch: list[Record], fail: FailFn) -> list[Record]:
        # CEL: one pass, so a record that ran into its deadline is not evaluated (and waited for) twice
        matches = self.condition.matches
        out = []
        for record in batch:
            try:
                keep = matches(record.value, record.metadata) if self.condition.uses_metadata \
                    else self.condition.predicate(record.value)
            except Exception as exc:
                fail(record, exc)
                continue
            if keep:
                out.append(record)
        return out
