"""The DataFlow spec: the pydantic models the CRD is generated from, the catalog of types, loading, and the
secret merge."""

from dataflow_processor.spec.common import SecretRef, SpecModel
from dataflow_processor.spec.connectors import (
    KafkaSinkConfig,
    KafkaSourceConfig,
    NessieSinkConfig,
    NessieSourceConfig,
    PostgresSinkConfig,
    PostgresSourceConfig,
    TrinoSinkConfig,
    TrinoSourceConfig,
)
from dataflow_processor.spec.dataflow import DataFlowSpec
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec
from dataflow_processor.spec.loader import SpecError, load_spec, parse_spec, read_spec_document
from dataflow_processor.spec.transformation_spec import TransformationSpec

__all__ = [
    "DataFlowSpec",
    "KafkaSinkConfig",
    "KafkaSourceConfig",
    "NessieSinkConfig",
    "NessieSourceConfig",
    "PostgresSinkConfig",
    "PostgresSourceConfig",
    "SecretRef",
    "SinkSpec",
    "SourceSpec",
    "SpecError",
    "SpecModel",
    "TransformationSpec",
    "TrinoSinkConfig",
    "TrinoSourceConfig",
    "load_spec",
    "parse_spec",
    "read_spec_document",
]
