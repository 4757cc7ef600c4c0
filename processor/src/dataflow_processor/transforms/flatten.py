"""``flatten``: one record per element of the array at ``field``.

Semantics (original, plus the nested-path choice documented in the README):

* missing or non-array value → the record passes unchanged; an object with an ``array`` key (the
  Avro union wrapper) is unwrapped first;
* each output is the record without the array: for a top-level ``field`` the key is removed; for a
  nested ``field`` (``order.items``) only that key is removed from its parent object, the parent's
  other keys stay (the original kept the whole parent, array included, duplicating it in every
  output; its docs claimed the parent became ``{}`` — neither is useful);
* an object element's keys are merged into the **root** and win over the record's own keys;
* a scalar element is put back at the array's path (``tags: ["x","y"]`` → ``tags: "x"``,
  ``tags: "y"``);
* an empty array gives one record without the array;
* all outputs share the input's source position, metadata and ack token;
* **fan-out cap**: an array of more than :data:`MAX_FANOUT` elements fails the whole record
  (errors sink, the message names the field, the count and the record's position) instead of
  being flattened: one 960 KB record of small elements would otherwise become ~480,000 records
  (~280 B each, +130 MiB). The record is kept whole rather than emitted in part, so re-feeding it
  from the errors sink cannot duplicate the outputs already written. The cap holds across the
  chain: when two flattens multiply (outputs of one source record reach a second flatten), the
  source record fails once if their total would pass the cap.
"""

from __future__ import annotations

from typing import Any

from dataflow_processor.paths import compile_path
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import FlattenConfig
from dataflow_processor.transforms.base import FailFn, Transform

MAX_FANOUT = 10_000
"""Most outputs one record may become in one flatten (about 2.8 MB of records at ~280 B each)."""


class FanOutError(ValueError):
    """The array is longer than :data:`MAX_FANOUT`."""


def _copy_node(node: Any) -> Any:
    return list(node) if isinstance(node, list) else dict(node)


def _key(node: Any, segment: str) -> Any:
    return int(segment) if isinstance(node, list) else segment


class FlattenTransform(Transform):
    type_name = "flatten"

    def __init__(self, config: FlattenConfig, index: int) -> None:
        super().__init__(index)
        self.path = compile_path(config.field)
        if not self.path.simple:
            raise ValueError(f"flatten field {config.field!r}: wildcards are not supported")
        self.segments = self.path.segments
        self._top = self.segments[0] if len(self.segments) == 1 else None

    def _without(self, value: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``value`` without the array, copying only the objects on the path."""
        if self._top is not None:
            top = self._top
            return {k: v for k, v in value.items() if k != top}
        root = dict(value)
        node: Any = root
        for segment in self.segments[:-1]:
            key = _key(node, segment)
            node[key] = _copy_node(node[key])
            node = node[key]
        del node[_key(node, self.segments[-1])]
        return root

    def _with(self, base: dict[str, Any], element: Any) -> dict[str, Any]:
        """A copy of ``base`` with ``element`` at the array's path."""
        if self._top is not None:
            out = dict(base)
            out[self._top] = element
            return out
        root = dict(base)
        node: Any = root
        for segment in self.segments[:-1]:
            key = _key(node, segment)
            node[key] = _copy_node(node[key])
            node = node[key]
        last = self.segments[-1]
        if isinstance(node, list):
            node.insert(int(last), element)
        else:
            node[last] = element
        return root

    def _array(self, value: dict[str, Any]) -> list[Any] | None:
        """The array at ``field`` (the Avro union wrapper unwrapped), or ``None``: passes unchanged."""
        array = self.path.get(value)
        if isinstance(array, dict) and isinstance(array.get("array"), list):
            array = array["array"]
        return array if isinstance(array, list) else None

    def _flatten(self, record: Record) -> list[Record]:
        value = record.value
        assert value is not None
        array = self._array(value)
        if array is None:
            return [record]
        if len(array) > MAX_FANOUT:
            raise FanOutError(self._too_many(record, len(array), f"field {self.path.text!r} holds"))
        base = self._without(value)
        if not array:
            record.value = base
            return [record]
        out = []
        for element in array:
            child = {**base, **element} if isinstance(element, dict) else self._with(base, element)
            out.append(record.child(child))
        return out

    def _too_many(self, record: Record, count: int, what: str) -> str:
        where = f" (record at {record.position.partition}/{record.position.offset})" if record.position else ""
        return (
            f"{what} {count} elements, more than the {MAX_FANOUT} outputs one record may be flattened "
            f"into{where}; the record is sent whole to the errors sink"
        )

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        out: list[Record] = []
        size = len(batch)
        i = 0
        while i < size:
            record = batch[i]
            token = record.token
            end = i + 1
            if token is not None:  # the outputs of one source record are consecutive (earlier flattens)
                index = record.ack_index
                while end < size and batch[end].token is token and batch[end].ack_index == index:
                    end += 1
            if end - i > 1 and not self._within_budget(batch, i, end, fail):
                i = end
                continue
            for sibling in batch[i:end]:
                try:
                    out.extend(self._flatten(sibling))
                except Exception as exc:
                    fail(sibling, exc)
            i = end
        return out

    def _within_budget(self, batch: list[Record], start: int, end: int, fail: FailFn) -> bool:
        """Whether the outputs of one source record's earlier flatten outputs ``batch[start:end]``
        stay within :data:`MAX_FANOUT` after this flatten too (two flattens multiply). If not, the
        source record fails once — its envelope holds it whole — and its outputs are dropped, so it
        is acknowledged once that envelope is written."""
        total = 0
        for sibling in batch[start:end]:
            array = self._array(sibling.value) if sibling.value is not None else None
            total += max(1, len(array)) if array is not None else 1
        if total <= MAX_FANOUT:
            return True
        fail(batch[start], FanOutError(self._too_many(batch[start], total, "its flatten outputs would hold")))
        return False
