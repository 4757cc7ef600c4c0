"""Validate a DataFlow object the way `kubectl apply` would: schema, then admission policy."""

from __future__ import annotations

from typing import Any

from dataflow_processor.admission.policy import policy_violations
from dataflow_processor.admission.schema import schema_violations
from dataflow_processor.admission.violation import Violation


def validate_object(obj: dict[str, Any]) -> list[Violation]:
    """Every reason `obj` would be rejected; empty when it would be admitted."""
    problems = schema_violations(obj)
    if problems:
        return problems
    return policy_violations(obj)


def validate_spec(spec: dict[str, Any], name: str = "dataflow") -> list[Violation]:
    """Like `validate_object`, for a bare spec (the ConfigMap's `spec.json`)."""
    return validate_object({
        "apiVersion": "dataflow.dataflow.io/v1",
        "kind": "DataFlow",
        "metadata": {"name": name},
        "spec": spec,
    })
