"""The connector half of the catalog (:mod:`.catalog`): every connector type, with its source and
sink configs and the module that implements it. One line per type.

It is a module of its own because sinks are built from it (:mod:`.endpoints`), and the router's
config, listed in the transformation half, holds sinks: one module for both would import itself.
Everything else reads the two halves through :mod:`.catalog`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dataflow_processor.spec.common import SpecModel
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


@dataclass(frozen=True)
class Connector:
    type: str
    source: builtins.type[SpecModel]
    sink: builtins.type[SpecModel]
    module: str
    """The module that registers this type's source and sink (``connectors/registry.py``)."""
    description: str
    """The CRD's description of the settings block."""


_C = "dataflow_processor.connectors."
CONNECTORS: tuple[Connector, ...] = (
    Connector("kafka", KafkaSourceConfig, KafkaSinkConfig, _C + "kafka", "Kafka connector."),
    Connector("postgresql", PostgresSourceConfig, PostgresSinkConfig, _C + "postgresql", "PostgreSQL connector."),
    Connector("trino", TrinoSourceConfig, TrinoSinkConfig, _C + "trino", "Trino connector."),
    Connector("nessie", NessieSourceConfig, NessieSinkConfig, _C + "nessie",
              "Nessie connector: Iceberg tables through Nessie's Iceberg REST catalog."),
)

CONNECTOR_TYPES: tuple[str, ...] = tuple(c.type for c in CONNECTORS)
CONNECTOR_BY_TYPE = {c.type: c for c in CONNECTORS}

if TYPE_CHECKING:
    ConnectorType = str
else:
    ConnectorType = Literal[CONNECTOR_TYPES]
