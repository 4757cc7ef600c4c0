"""Admission rules evaluated offline: the same checks the API server makes on `kubectl apply`.

Two layers, both read from the files the cluster itself is given (copied here as package data by
`scripts/gen_crd.py` and `scripts/gen_policy.py`, a test fails on drift):

- `schema`: the CRD's structural schema (types, enums, required fields, bounds, unknown fields);
- `policy`: the ValidatingAdmissionPolicy's CEL validations, evaluated with cel-python.

`validate_object()` runs both in the server's order: schema first, and the policy only when the
schema passes (the API server never runs admission on an object that failed schema validation).
"""

from dataflow_processor.admission.validate import validate_object, validate_spec
from dataflow_processor.admission.violation import Violation

__all__ = ["Violation", "validate_object", "validate_spec"]
