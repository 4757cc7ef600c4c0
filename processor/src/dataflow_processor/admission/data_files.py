"""The CRD and the ValidatingAdmissionPolicy, as shipped inside the package.

They are copies of `config/crd/bases/…` and `config/policy/…`, written by the generators in
`scripts/`; `tests/unit/test_generated_copies.py` fails when a copy drifts from its source.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


def _load_all(name: str) -> list[dict[str, Any]]:
    text = resources.files("dataflow_processor.admission").joinpath("data", name).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


@lru_cache(maxsize=1)
def crd_document() -> dict[str, Any]:
    return _load_all("crd.yaml")[0]


@lru_cache(maxsize=1)
def policy_document() -> dict[str, Any]:
    return next(d for d in _load_all("policy.yaml") if d["kind"] == "ValidatingAdmissionPolicy")
