"""``mask``: replace the value at each of ``fields`` with a string of ``maskChar``.

``keepLength: false`` → ``maskChar`` three times; ``true`` → one ``maskChar`` per **character** of
the value's text (its string form: the string itself, a number's JSON text, an object's JSON) — the
original counted UTF-8 bytes, so ``"пароль"`` got 12 stars instead of 6. Missing paths are skipped;
``$.`` is accepted; wildcards (``cards.#.number``) mask every match.
"""

from __future__ import annotations

from typing import Any

from dataflow_processor.conditions import string_form
from dataflow_processor.paths import compile_path
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import MaskConfig
from dataflow_processor.transforms.base import FailFn, Transform


class MaskTransform(Transform):
    type_name = "mask"

    def __init__(self, config: MaskConfig, index: int) -> None:
        super().__init__(index)
        self.paths = [compile_path(field) for field in config.fields]
        self.char = config.mask_char
        self.keep_length = config.keep_length
        self.fixed = config.mask_char * 3

    def masked(self, value: Any) -> str:
        if self.keep_length:
            return self.char * len(string_form(value))
        return self.fixed

    def _mask(self, value: dict[str, Any]) -> None:
        for path in self.paths:
            for container, key in path.locate(value):
                container[key] = self.masked(container[key])

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        out = []
        for record in batch:
            try:
                self._mask(record.value)  # type: ignore[arg-type]
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out
