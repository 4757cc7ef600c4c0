"""Merging resolved secret values into the spec, so no secret ever sits in the ConfigMap.

The operator writes two objects per DataFlow:

* ConfigMap ``dataflow-<name>-spec``, key ``spec.json``: the spec exactly as the user wrote it,
  ``…SecretRef`` fields included, no secret values.
* Secret ``dataflow-<name>-secrets``: one key per resolved reference. The key is the dotted path of
  the *literal twin* of the ref inside ``spec`` (numeric segments index lists), the value is the
  secret's decoded text. ``source.kafka.brokersSecretRef`` → key ``source.kafka.brokers``;
  a route sink's DSN → ``transformations.2.router.routes.0.sink.postgresql.connectionString``.
  Secret keys allow ``[-._a-zA-Z0-9]``, so the path is a valid key as is.

The processor reads the Secret either as a mounted directory (one file per key; Kubernetes' hidden
``..data`` entries are skipped) or as one JSON file ``{"<path>": "<value>", ...}``, and sets each
value on its path before validation. The typed-block key and ``config`` are interchangeable in a
path (``source.kafka.brokers`` also reaches ``source.config.brokers`` when ``source.type`` is
kafka). A value is merged only where the spec declares the matching ``…SecretRef``; any other key
is an error naming it (a typo or a stale Secret must not silently configure something else).
Merged values win over literals, like the original. ``brokers`` accepts a comma-separated string.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dataflow_processor.spec.common import twin_of


class SecretMergeError(ValueError):
    """A secret key that cannot be merged; the message names the key."""


def read_secret_values(path: str | Path) -> dict[str, str]:
    """Read resolved values from a mounted Secret directory or a JSON file; missing path → {}."""
    p = Path(path)
    if not p.exists():
        return {}
    if p.is_dir():
        values: dict[str, str] = {}
        for entry in sorted(p.iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            values[entry.name] = entry.read_text(encoding="utf-8")
        return values
    data = json.loads(p.read_text(encoding="utf-8") or "{}")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SecretMergeError(f"{p}: expected a JSON object of string values")
    return dict(data)


def _child(node: Any, segment: str, key_path: str) -> Any:
    if isinstance(node, list):
        if not segment.isdigit() or int(segment) >= len(node):
            raise SecretMergeError(f"secret key {key_path!r}: no list element {segment!r} in the spec")
        return node[int(segment)]
    if isinstance(node, dict):
        if segment in node:
            return node[segment]
        # typed-block key and ``config`` are interchangeable
        if node.get("type") == segment and isinstance(node.get("config"), dict):
            return node["config"]
        if segment == "config" and isinstance(node.get(node.get("type", "")), dict):
            return node[node["type"]]
    raise SecretMergeError(f"secret key {key_path!r}: no field {segment!r} in the spec")


def merge_secret_values(spec: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Return a copy of the raw ``spec`` dict with each secret value set on its field path."""
    merged = copy.deepcopy(spec)
    for key_path, value in values.items():
        segments = key_path.split(".")
        if not key_path or any(s == "" for s in segments):
            raise SecretMergeError(f"secret key {key_path!r}: not a field path")
        parent: Any = merged
        for segment in segments[:-1]:
            parent = _child(parent, segment, key_path)
        field = segments[-1]
        if not isinstance(parent, dict):
            raise SecretMergeError(f"secret key {key_path!r}: parent is not an object")
        if f"{field}SecretRef" not in parent:
            raise SecretMergeError(
                f"secret key {key_path!r}: the spec has no {field}SecretRef at that path to receive it"
            )
        parent[field] = value
    return merged


def unresolved_secret_refs(model: BaseModel, path: str = "spec") -> list[str]:
    """Field paths whose ``…SecretRef`` is set but whose literal twin is still empty."""
    problems: list[str] = []
    fields = type(model).model_fields
    for name, info in fields.items():
        value = getattr(model, name)
        alias = info.alias or name
        twin = twin_of(info)
        if twin is not None and value is not None:
            if getattr(model, twin) in (None, "", []):
                twin_alias = fields[twin].alias or twin
                problems.append(
                    f"{path}.{twin_alias}: {alias} is set but its value was not provided "
                    f"(no secret key {path.removeprefix('spec.')}.{twin_alias})"
                )
        elif isinstance(value, BaseModel):
            problems.extend(unresolved_secret_refs(value, f"{path}.{alias}"))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems.extend(unresolved_secret_refs(item, f"{path}.{alias}.{i}"))
    return problems
