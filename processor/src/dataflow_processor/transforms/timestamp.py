"""``timestamp``: set ``fieldName`` (default ``created_at``) to the current time.

``format`` is a named format (``RFC3339`` default, ``RFC3339Nano``, ``Unix``, ``UnixMilli``, …) or
a Go layout — see :mod:`dataflow_processor.timeformat`. The time is taken once per batch, so all
records of a batch carry the same stamp. A dotted ``fieldName`` creates nested objects; an existing
value is overwritten.
"""

from __future__ import annotations

from dataflow_processor.paths import compile_path
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import TimestampConfig
from dataflow_processor.timeformat import compile_format, now_ns
from dataflow_processor.transforms.base import FailFn, Transform


class TimestampTransform(Transform):
    type_name = "timestamp"

    def __init__(self, config: TimestampConfig, index: int) -> None:
        super().__init__(index)
        self.path = compile_path(config.field_name)
        self.render = compile_format(config.format)
        self._key = self.path.last if self.path.simple and len(self.path.segments) == 1 else None

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        stamp = self.render(now_ns())
        key = self._key
        if key is not None:
            for record in batch:
                record.value[key] = stamp  # type: ignore[index]
            return batch
        out = []
        set_value = self.path.set
        for record in batch:
            try:
                set_value(record.value, stamp)  # type: ignore[arg-type]
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out
