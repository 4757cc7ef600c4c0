"""``DataFlowSpec``: the whole ``spec`` of a DataFlow resource.

Kubernetes-typed fields (``resources``, ``affinity``, ``tolerations``, ``nodeSelector``,
``imagePullSecrets``) are kept as plain dicts/lists: the API server validates them. They and
``processorImage`` concern the operator's Deployment; the processor accepts and ignores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field, model_validator

from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.spec.transformations import MAX_ROUTES, RouterConfig

MAX_ROUTERS = 2
"""Router transformations one DataFlow may have (x 16 routes each = 32 route sinks), as the admission
policy says (scripts/gen_policy.py): every route sink is a connection, a writer and a byte share."""


class DataFlowSpec(SpecModel):
    source: SourceSpec
    sink: SinkSpec
    transformations: list[TransformationSpec] = Field(default_factory=list)
    errors: SinkSpec | None = None
    resources: dict[str, Any] | None = None
    node_selector: dict[str, str] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    processor_image: str | None = Field(default=None, description="Overrides the processor image (operator).")
    image_pull_secrets: list[dict[str, Any]] | None = Field(default=None, description="Pull secrets (operator).")

    @model_validator(mode="after")
    def _routers(self) -> DataFlowSpec:
        routers = sum(1 for t in self.transformations if t.type == "router")
        if routers > MAX_ROUTERS:
            raise ValueError(
                f"transformations: at most {MAX_ROUTERS} router transformations "
                f"(at most {MAX_ROUTERS * MAX_ROUTES} route sinks) in one DataFlow, got {routers}"
            )
        return self

    def route_sinks(self) -> Iterator[tuple[str, int, int, str, SinkSpec]]:
        """Every router route sink: ``(field path, transformation index, route index, condition, sink)``."""
        for t_index, transformation in enumerate(self.transformations):
            if transformation.type != "router":
                continue
            router = transformation.config
            assert isinstance(router, RouterConfig)
            for r_index, route in enumerate(router.routes):
                path = f"transformations.{t_index}.router.routes.{r_index}.sink"
                yield path, t_index, r_index, route.condition, route.sink

    def sinks(self) -> Iterator[tuple[str, SinkSpec]]:
        """Every sink with its field path: main, errors, route sinks."""
        yield "sink", self.sink
        if self.errors is not None:
            yield "errors", self.errors
        for path, _t, _r, _cond, sink in self.route_sinks():
            yield path, sink
