"""``router``: send a record to the sink of the first route whose condition holds.

Routes are tried in order; the first match sets ``record.route`` (a pipeline-wide route id, so two
routes with the same condition text no longer collide as in the original) and adds metadata
``routed_condition``. No match → the record stays on its current route (the main sink unless an
earlier router chose one). The router never drops a record. Later transformations still apply; the
pipeline splits by route after the whole chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dataflow_processor.conditions import DEFAULT_TIMEOUT, compile_condition
from dataflow_processor.records import Record
from dataflow_processor.spec.transformations import RouterConfig
from dataflow_processor.transforms.base import BuildOptions, FailFn, Transform


class RouterTransform(Transform):
    type_name = "router"

    @classmethod
    def build(cls, config: Any, index: int, options: BuildOptions) -> Transform:
        return cls(config, index, options.route_ids, options.condition_timeout)

    def __init__(
        self,
        config: RouterConfig,
        index: int,
        route_ids: Sequence[int] | None = None,
        condition_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(index)
        ids = list(route_ids) if route_ids is not None else list(range(len(config.routes)))
        conditions = [
            compile_condition(
                route.condition, field=f"{self.field_path}.routes[{r_index}].condition", timeout=condition_timeout
            )
            for r_index, route in enumerate(config.routes)
        ]
        # (id, text, predicate over the value, or over value and metadata when the condition reads it)
        self.routes = [
            (route_id, condition.text, condition.record_predicate or condition.predicate, condition.uses_metadata)
            for route_id, condition in zip(ids, conditions, strict=True)
        ]
        self.runs_cel = any(condition.kind == "cel" for condition in conditions)

    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        out = []
        routes = self.routes
        for record in batch:
            try:
                value = record.value
                for route_id, text, predicate, uses_metadata in routes:
                    if predicate(value, record.metadata) if uses_metadata else predicate(value):  # type: ignore[call-arg]
                        record.route = route_id
                        record.metadata = {**record.metadata, "routed_condition": text}
                        break
            except Exception as exc:
                fail(record, exc)
                continue
            out.append(record)
        return out
