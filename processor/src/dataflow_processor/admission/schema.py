"""The CRD's structural schema as JSON Schema, with errors worded like the API server's.

A Kubernetes structural schema differs from plain JSON Schema in three ways that matter here:
objects with `properties` reject unknown fields (kubectl's default strict field validation),
`x-kubernetes-preserve-unknown-fields` allows anything below it, and `x-kubernetes-int-or-string`
admits both types. `to_json_schema()` encodes those; `schema_violations()` names each error by its
path (`spec.source.kafka.brokers`) and words it as the server does ("Required value",
"Unsupported value", `unknown field "…"`) so that one expected message matches both.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from dataflow_processor.admission.data_files import crd_document
from dataflow_processor.admission.violation import Violation


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(node)
    _convert(out)
    return out


def _convert(node: dict[str, Any]) -> None:
    node.pop("description", None)
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    keep_unknown = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    props = node.get("properties")
    if isinstance(props, dict):
        for child in props.values():
            _convert(child)
        if not keep_unknown:
            node.setdefault("additionalProperties", False)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _convert(extra)
    items = node.get("items")
    if isinstance(items, dict):
        _convert(items)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft7Validator:
    version = crd_document()["spec"]["versions"][0]
    root = to_json_schema(version["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server's own rules, not by the CRD schema.
    root["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(root)


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _words(err: ValidationError) -> Iterator[str]:
    path = _path(err.absolute_path)
    v = err.validator
    if v == "required":
        missing = err.message.split("'")[1]
        yield f"{_path([*err.absolute_path, missing])}: Required value"
    elif v == "additionalProperties":
        extras = [k for k in err.instance if k not in err.schema.get("properties", {})]
        for k in extras:
            yield f'unknown field "{_path([*err.absolute_path, k])}"'
    elif v == "enum":
        allowed = ", ".join(json.dumps(a) for a in err.validator_value)
        yield f"{path}: Unsupported value: {json.dumps(err.instance)}: supported values: {allowed}"
    elif v == "type":
        got = json.dumps(type(err.instance).__name__)
        yield f"{path}: Invalid value: {got}: {path} in body must be of type {err.validator_value}"
    elif v in ("maxLength", "minLength"):
        word = "at most" if v == "maxLength" else "at least"
        yield f"{path}: Invalid value: {word} {err.validator_value} chars long"
    elif v in ("maxItems", "minItems"):
        word = "at most" if v == "maxItems" else "at least"
        yield f"{path}: Invalid value: must have {word} {err.validator_value} items"
    elif v in ("minimum", "maximum"):
        word = "greater than or equal to" if v == "minimum" else "less than or equal to"
        yield f"{path}: Invalid value: {err.instance}: {path} in body should be {word} {err.validator_value}"
    else:
        yield f"{path}: Invalid value: {err.message}"


def schema_violations(obj: dict[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    for found in sorted(_validator().iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        err = found
        if found.validator == "anyOf" and found.context:
            # int-or-string quantity: report the most specific branch error only.
            err = min(found.context, key=lambda e: len(e.message))
        out.extend(Violation("schema", w) for w in _words(err))
    return out
