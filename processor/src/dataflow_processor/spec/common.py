"""Shared pieces of the spec models: the strict base model and ``SecretRef``.

Every model uses snake_case attributes with the CRD's camelCase names as aliases
(``populate_by_name`` so Python code may use either) and rejects unknown fields, so a typo in a
manifest is an error naming the field path instead of a silently ignored key. Kubernetes types
(resources, affinity, tolerations, nodeSelector) are kept as plain dicts elsewhere.

A field ``x`` that can come from a Kubernetes Secret has a twin ``xSecretRef``. Structurally either
one may be set; at run time the operator has resolved the ref into the Secret the processor mounts,
and :mod:`dataflow_processor.spec.secrets` has merged the value into ``x``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Strict base: camelCase aliases, unknown fields rejected, immutable after validation."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
    )

    def dump(self) -> dict[str, Any]:
        """The model as the CRD would show it (camelCase keys, unset optional fields omitted)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SecretRef(SpecModel):
    """A reference to one key of a Kubernetes Secret; ``namespace`` defaults to the DataFlow's."""

    name: str
    key: str
    namespace: str | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> SecretRef:
        if not self.name:
            raise ValueError("secret name is required")
        if not self.key:
            raise ValueError("secret key is required")
        return self


def require_one_of(model: BaseModel, *fields: str) -> None:
    """Raise unless each named field or its ``…SecretRef`` twin is set (the CRD's ``yes*``)."""
    missing = []
    for field in fields:
        if getattr(model, field, None) in (None, "", []) and getattr(model, f"{field}_secret_ref", None) is None:
            alias = type(model).model_fields[field].alias or field
            missing.append(f"{alias} or {alias}SecretRef is required")
    if missing:
        raise ValueError("; ".join(missing))
