"""Source and sink specs: ``{type, <type>: {...}}`` (or ``config``), one typed block each.

The types and their blocks come from :data:`.catalog.CONNECTORS` (a source's block is the
connector's source config, a sink's its sink config). ``SinkSpec`` is used for the main sink, the
errors sink and every router route sink.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.connector_catalog import CONNECTOR_TYPES, CONNECTORS, ConnectorType
from dataflow_processor.spec.shape import normalize_typed_block


class SourceSpec(SpecModel):
    blocks = {c.type: c.source for c in CONNECTORS}
    type: ConnectorType = Field(description="Source type; the block of the same name holds its settings.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, CONNECTOR_TYPES, "source")

    @property
    def config(self) -> SpecModel:
        """The typed block that matches ``type``."""
        return self.block()


class SinkSpec(SpecModel):
    blocks = {c.type: c.sink for c in CONNECTORS}
    type: ConnectorType = Field(description="Sink type; the block of the same name holds its settings.")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, CONNECTOR_TYPES, "sink")

    @property
    def config(self) -> SpecModel:
        return self.block()

