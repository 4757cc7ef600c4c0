"""The nine transformations' configs, and ``TransformationSpec`` (``{type, <type>: {...}}``).

Semantics live in ``dataflow_processor.transforms``; this module only checks shape and required
fields (original webhook rules: flatten.field, filter.condition and route conditions non-empty;
mask/select/remove need at least one field; every route sink is a valid sink).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.endpoints import SinkSpec
from dataflow_processor.spec.shape import normalize_typed_block


class TimestampConfig(SpecModel):
    field_name: str = Field(default="created_at", min_length=1)
    format: str = Field(default="RFC3339", min_length=1)


class FlattenConfig(SpecModel):
    field: str = Field(min_length=1)


class FilterConfig(SpecModel):
    condition: str = Field(min_length=1)


class MaskConfig(SpecModel):
    fields: list[str] = Field(min_length=1)
    mask_char: str = Field(default="*", min_length=1)
    keep_length: bool = False


class Route(SpecModel):
    condition: str = Field(min_length=1)
    sink: SinkSpec


class RouterConfig(SpecModel):
    routes: list[Route] = Field(min_length=1)


class SelectConfig(SpecModel):
    fields: list[str] = Field(min_length=1)


class RemoveConfig(SpecModel):
    fields: list[str] = Field(min_length=1)


class CaseConfig(SpecModel):
    deep: bool = False


TRANSFORMATION_CONFIGS: dict[str, type[SpecModel]] = {
    "timestamp": TimestampConfig,
    "flatten": FlattenConfig,
    "filter": FilterConfig,
    "mask": MaskConfig,
    "router": RouterConfig,
    "select": SelectConfig,
    "remove": RemoveConfig,
    "snakeCase": CaseConfig,
    "camelCase": CaseConfig,
}

TransformationType = Literal[
    "timestamp", "flatten", "filter", "mask", "router", "select", "remove", "snakeCase", "camelCase"
]


class TransformationSpec(SpecModel):
    type: TransformationType
    timestamp: TimestampConfig | None = None
    flatten: FlattenConfig | None = None
    filter: FilterConfig | None = None
    mask: MaskConfig | None = None
    router: RouterConfig | None = None
    select: SelectConfig | None = None
    remove: RemoveConfig | None = None
    snake_case: CaseConfig | None = Field(default=None, alias="snakeCase")
    camel_case: CaseConfig | None = Field(default=None, alias="camelCase")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, TRANSFORMATION_CONFIGS, "transformation")

    @property
    def config(self) -> SpecModel:
        attr = {"snakeCase": "snake_case", "camelCase": "camel_case"}.get(self.type, self.type)
        block = getattr(self, attr)
        assert block is not None
        return block  # type: ignore[no-any-return]
