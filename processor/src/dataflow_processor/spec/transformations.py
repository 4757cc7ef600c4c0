"""The nine transformations' configs: the one declaration of each transformation's fields.

Semantics live in ``dataflow_processor.transforms``; this module only declares shape, bounds and
required fields (flatten.field, filter.condition and route conditions non-empty; mask/select/remove
need at least one field; every route sink is a valid sink). The CRD's transformation blocks are
generated from these models (``scripts/gen_crd.py``); :mod:`.catalog` names each type's config.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dataflow_processor.spec.common import SpecModel, crd
from dataflow_processor.spec.endpoints import SinkSpec  # a route holds a sink

MAX_ROUTES = 16
"""Routes one router may have (x 2 routers = 32 route sinks, each a connection and a writer)."""

FieldPath = Annotated[str, Field(max_length=512)]
FIELD_PATHS = "Field paths (`a.b`, `$.a.b`, `items.0`)."
CONDITION_FORMS = (
    "`$.path` (truthy), `$.path == 'v'`, `$.path != 'v'` (a missing field fails both), `&&`, `||`, `!` and"
    " parentheses over those, `metadata.<key>` paths for the record's metadata (`metadata.topic`), or a CEL"
    " expression over `record`."
)


def _field_paths() -> list[str]:
    return Field(min_length=1, max_length=64, description=FIELD_PATHS)  # type: ignore[no-any-return]


class TimestampConfig(SpecModel):
    field_name: str = Field(
        default="created_at", min_length=1, max_length=512, description="Field to set; dots create nesting."
    )
    format: str = Field(
        default="RFC3339",
        min_length=1,
        max_length=128,
        description="RFC3339 (default), RFC3339Nano, Unix, UnixMilli, or a Go layout such as `2006-01-02 15:04:05`.",
    )


class FlattenConfig(SpecModel):
    field: str = Field(min_length=1, max_length=512, description="Array field path.")


class FilterConfig(SpecModel):
    condition: str = Field(min_length=1, max_length=4096, description=CONDITION_FORMS)


class MaskConfig(SpecModel):
    fields: list[FieldPath] = _field_paths()
    mask_char: str = Field(default="*", min_length=1, max_length=4, description="Mask character.")
    keep_length: bool = Field(
        default=False, description="Mask with as many characters as the value has (else three)."
    )


class Route(SpecModel):
    condition: str = Field(min_length=1, max_length=4096, description="Route condition, same forms as filter.")
    sink: SinkSpec = Field(description="The route sink: `type` plus one settings block.")


class RouterConfig(SpecModel):
    routes: list[Route] = Field(
        min_length=1,
        max_length=MAX_ROUTES,
        description="Routes in order; the first match wins; no match goes to the main sink.",
        json_schema_extra=crd(items={"description": "A route."}),
    )


class SelectConfig(SpecModel):
    fields: list[FieldPath] = _field_paths()


class RemoveConfig(SpecModel):
    fields: list[FieldPath] = _field_paths()


class CaseConfig(SpecModel):
    deep: bool = Field(default=False, description="Also nested objects and arrays.")
