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
