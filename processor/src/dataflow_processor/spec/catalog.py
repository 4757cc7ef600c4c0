"""The catalog: every connector and transformation type, with its configs and its implementation.

One line per type. Everything that lists types derives from here: the ``type`` literals and the
typed blocks of :mod:`.endpoints` and :mod:`.transformation_spec`, the connector registry
(``connectors/registry.py``: which module to import for a type), the transformation builder
(``transforms/chain.py``: which class to build), the CRD's enums and blocks (``scripts/gen_crd.py``),
the admission policy (``scripts/gen_policy.py``) and the docs (``scripts/gen_spec_docs.py``).
Adding a connector is its module, one line in :data:`CONNECTORS` (kept in
:mod:`.connector_catalog`, which sinks are built from) and a regeneration
(``docs/adding-a-connector.md``).

Implementations are named, not imported: the spec layer sits below ``connectors/`` and
``transforms/``, and the processor imports a connector's client library only when a DataFlow uses it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dataflow_processor.spec.common import SpecModel
from dataflow_processor.spec.connector_catalog import (
    CONNECTOR_BY_TYPE,
    CONNECTOR_TYPES,
    CONNECTORS,
    Connector,
    ConnectorType,
)
from dataflow_processor.spec.transformations import (
    CaseConfig,
    FilterConfig,
    FlattenConfig,
    MaskConfig,
    RemoveConfig,
    RouterConfig,
    SelectConfig,
    TimestampConfig,
)


@dataclass(frozen=True)
class Transformation:
    type: str
    config: builtins.type[SpecModel]
    implementation: str
    """``module:Class`` of the :class:`~dataflow_processor.transforms.base.Transform` it builds."""
    description: str


_T = "dataflow_processor.transforms."
TRANSFORMATIONS: tuple[Transformation, ...] = (
    Transformation("timestamp", TimestampConfig, _T + "timestamp:TimestampTransform",
                   "Set a field to the current time."),
    Transformation("flatten", FlattenConfig, _T + "flatten:FlattenTransform",
                   "Emit one record per element of an array field (at most 10,000 outputs per record; a record "
                   "that would pass it goes whole to the errors sink)."),
    Transformation("filter", FilterConfig, _T + "filter:FilterTransform", "Keep records matching a condition."),
    Transformation("mask", MaskConfig, _T + "mask:MaskTransform", "Replace field values with a mask string."),
    Transformation("router", RouterConfig, _T + "router:RouterTransform",
                   "Send records matching a condition to another sink (at most 2 routers per DataFlow)."),
    Transformation("select", SelectConfig, _T + "select:SelectTransform",
                   "Keep only these fields (output is flat: last path segment)."),
    Transformation("remove", RemoveConfig, _T + "remove:RemoveTransform", "Delete these fields."),
    Transformation("snakeCase", CaseConfig, _T + "snake_case:SnakeCaseTransform", "Convert keys to snake_case."),
    Transformation("camelCase", CaseConfig, _T + "camel_case:CamelCaseTransform", "Convert keys to CamelCase."),
)

TRANSFORMATION_TYPES: tuple[str, ...] = tuple(t.type for t in TRANSFORMATIONS)
TRANSFORMATION_BY_TYPE = {t.type: t for t in TRANSFORMATIONS}

if TYPE_CHECKING:
    TransformationType = str
else:
    TransformationType = Literal[TRANSFORMATION_TYPES]

__all__ = [
    "CONNECTORS", "CONNECTOR_BY_TYPE", "CONNECTOR_TYPES", "TRANSFORMATIONS", "TRANSFORMATION_BY_TYPE",
    "TRANSFORMATION_TYPES", "Connector", "ConnectorType", "Transformation", "TransformationType",
]
