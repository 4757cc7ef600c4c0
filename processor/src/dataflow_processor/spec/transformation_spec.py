"""``TransformationSpec``: one step of the chain, ``{type, <type>: {...}}`` (or ``config``).

The types and their blocks come from :data:`.catalog.TRANSFORMATIONS`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from dataflow_processor.spec.catalog import TRANSFORMATION_TYPES, TRANSFORMATIONS, TransformationType
from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.shape import normalize_typed_block


class TransformationSpec(SpecModel):
    blocks = {t.type: t.config for t in TRANSFORMATIONS}
    type: TransformationType = Field(description="Transformation type.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, TRANSFORMATION_TYPES, "transformation")

    @property
    def config(self) -> SpecModel:
        return self.block()
