"""The ValidatingAdmissionPolicy's CEL validations, evaluated offline with cel-python.

Each validation is compiled once. Evaluation mirrors the API server: `object` is the DataFlow,
`oldObject` is null (a create), and an expression that fails to evaluate rejects the object, as
the policy's `failurePolicy: Fail` does on the server. The Kubernetes quantity functions the rules
use come from `admission/quantity.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from dataflow_processor.admission.data_files import policy_document
from dataflow_processor.admission.quantity import FUNCTIONS
from dataflow_processor.admission.violation import Violation


@dataclass(frozen=True)
class _Rule:
    expression: str
    message: str
    program: Any


@lru_cache(maxsize=1)
def _rules() -> tuple[_Rule, ...]:
    env = celpy.Environment()
    out = []
    for v in policy_document()["spec"]["validations"]:
        out.append(_Rule(v["expression"], v["message"], env.program(env.compile(v["expression"]), functions=FUNCTIONS)))
    return tuple(out)


def policy_violations(obj: dict[str, Any]) -> list[Violation]:
    activation = json_to_cel({
        "object": obj,
        "oldObject": None,
        "request": {"operation": "CREATE"},
    })
    out: list[Violation] = []
    for rule in _rules():
        try:
            result = rule.program.evaluate(activation)
        except CELEvalError as exc:
            result = exc
        if isinstance(result, Exception):
            # failurePolicy Fail: an expression that cannot be evaluated rejects the object.
            out.append(Violation("policy", f"{rule.message} (expression failed: {result})"))
        elif not bool(result):
            out.append(Violation("policy", rule.message))
    return out
