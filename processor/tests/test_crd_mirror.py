"""The pydantic models mirror the CRD (DESIGN.md §2): a field in one only is a failure.

Walks ``config/crd/bases/dataflow.dataflow.io_dataflows.yaml`` and :class:`DataFlowSpec` together.
Allowed differences, by design: the CRD's ``config`` keys (the newer original's shape, normalized
away before validation) and model fields marked ``x-secret-target`` (filled only from the mounted
Secret, see ``spec/secrets.py``). Kubernetes-typed fields are not descended into.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel

from dataflow_processor.spec.common import secret_marker
from dataflow_processor.spec.dataflow import DataFlowSpec

CRD = Path(__file__).resolve().parents[2] / "config" / "crd" / "bases" / "dataflow.dataflow.io_dataflows.yaml"
KUBERNETES_TYPES = {"resources", "affinity", "tolerations", "nodeSelector", "imagePullSecrets"}


def model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def differences(schema: dict[str, Any], model: type[BaseModel], path: str) -> list[str]:
    if schema.get("type") == "array":
        schema = schema["items"]
    props = schema.get("properties", {})
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    found = [f"CRD only: {path}.{k}" for k in sorted(set(props) - set(fields)) if k != "config"]
    for key in sorted(set(fields) - set(props)):
        marker = secret_marker(fields[key])
        if not (marker is not None and not marker.in_manifest):
            found.append(f"model only: {path}.{key}")
    for key in sorted(set(props) & set(fields)):
        sub = model_in(fields[key].annotation)
        if key not in KUBERNETES_TYPES and sub is not None:
            found.extend(differences(props[key], sub, f"{path}.{key}"))
    return found


def test_models_and_crd_have_the_same_fields() -> None:
    crd = yaml.safe_load(CRD.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert differences(spec_schema, DataFlowSpec, "spec") == []
