"""Source and sink specs: ``{type, <type>: {...}}`` (or ``config``), one typed block each.

``SinkSpec`` is used for the main sink, the errors sink and every router route sink.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.connectors import (
    SINK_CONFIGS,
    SOURCE_CONFIGS,
    KafkaSinkConfig,
    KafkaSourceConfig,
    NessieSinkConfig,
    NessieSourceConfig,
    PostgresSinkConfig,
    PostgresSourceConfig,
    TrinoSinkConfig,
    TrinoSourceConfig,
)
from dataflow_processor.spec.shape import normalize_typed_block

ConnectorType = Literal["kafka", "postgresql", "trino", "nessie"]


class SourceSpec(SpecModel):
    type: ConnectorType
    kafka: KafkaSourceConfig | None = None
    postgresql: PostgresSourceConfig | None = None
    trino: TrinoSourceConfig | None = None
    nessie: NessieSourceConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, SOURCE_CONFIGS, "source")

    @property
    def config(self) -> SpecModel:
        """The typed block that matches ``type``."""
        block = getattr(self, self.type)
        assert block is not None
        return block  # type: ignore[no-any-return]


class SinkSpec(SpecModel):
    type: ConnectorType
    kafka: KafkaSinkConfig | None = None
    postgresql: PostgresSinkConfig | None = None
    trino: TrinoSinkConfig | None = None
    nessie: NessieSinkConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        return normalize_typed_block(data, SINK_CONFIGS, "sink")

    @property
    def config(self) -> SpecModel:
        block = getattr(self, self.type)
        assert block is not None
        return block  # type: ignore[no-any-return]
