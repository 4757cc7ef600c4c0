"""Filters that find and resolve the `*SecretRef`s of a DataFlow spec.

Walking a nested spec is awkward in Jinja, so the role asks these filters instead:

- `dataflow_secret_refs(spec, namespace)` lists every reference as
  `{path, name, namespace, key, foreign}`, where `path` is the dotted path of the ref's literal twin
  (`source.kafka.sasl.passwordSecretRef` → `source.kafka.sasl.password`; list elements by index:
  `transformations.0.router.routes.1.sink.postgresql.connectionString`). That path is the key the
  processor expects in Secret `dataflow-<name>-secrets`. `foreign` is true when the ref names
  another namespace than the DataFlow's: such a ref is never looked up (see below).
- `dataflow_secret_ids(refs)` gives the distinct `namespace/name` pairs to look up once each: only
  the DataFlow's own namespace.
- `dataflow_resolve_secrets(refs, found)` maps each path to its decoded value (`values`) and to the
  Secret's own base64 text (`data`, copied into the processor's Secret as is), records the
  referenced Secrets' resourceVersions (`versions`, part of the pod's spec hash), and lists the refs
  it could not satisfy (`missing`) with a message naming the secret and the key.

No secret value is ever returned in a message.

Secrets are read only from the DataFlow's own namespace. The operator may read Secrets everywhere, so
resolving `namespace: other` for a tenant would hand them another namespace's secret (a confused
deputy). A foreign ref is reported as an error that names the field, and says nothing about the
other namespace (not whether the secret or the key exists there): it is never read. Admission
refuses such refs too; this is the operator's own enforcement, for objects admitted without the
policy.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ansible.utils.unsafe_proxy import wrap_var

SUFFIX = "SecretRef"


def _walk(node: Any, path: list[str], default_ns: str, out: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(SUFFIX) and len(key) > len(SUFFIX) and isinstance(value, dict):
                namespace = str(value.get("namespace") or default_ns)
                out.append({
                    "path": ".".join([*path, key[: -len(SUFFIX)]]),
                    "name": str(value.get("name", "")),
                    "namespace": namespace,
                    "key": str(value.get("key", "")),
                    "foreign": namespace != default_ns,
                })
            else:
                _walk(value, [*path, str(key)], default_ns, out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, [*path, str(index)], default_ns, out)


def dataflow_secret_refs(spec: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for section in ("source", "sink", "errors", "transformations"):
        if section in (spec or {}):
            _walk(spec[section], [section], namespace, out)
    return out


def dataflow_secret_ids(refs: list[dict[str, Any]]) -> list[str]:
    return sorted({f"{r['namespace']}/{r['name']}" for r in refs if not r.get("foreign")})


def _decode(b64: str) -> str | None:
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def dataflow_resolve_secrets(refs: list[dict[str, Any]], found: dict[str, Any]) -> dict[str, Any]:
    """`found` maps `namespace/name` to the Secret object read by the k8s lookup (or nothing)."""
    values: dict[str, str] = {}
    data_b64: dict[str, str] = {}
    missing: list[str] = []
    versions: dict[str, str] = {}
    for ref in refs:
        if ref.get("foreign"):
            missing.append(f"spec.{ref['path']}SecretRef.namespace: a secret reference may only name a Secret "
                           "in the DataFlow's own namespace (omit namespace)")
            continue
        sid = f"{ref['namespace']}/{ref['name']}"
        secret = found.get(sid) or {}
        if isinstance(secret, list):
            secret = secret[0] if secret else {}
        if not secret:
            missing.append(f"secret {sid} not found (referenced by {ref['path']}SecretRef)")
            continue
        versions[sid] = str(secret.get("metadata", {}).get("resourceVersion", ""))
        data = secret.get("data") or {}
        if ref["key"] not in data:
            missing.append(f"key {ref['key']} not found in secret {sid} (referenced by {ref['path']}SecretRef)")
            continue
        value = _decode(data[ref["key"]])
        if value is None:
            missing.append(f"key {ref['key']} of secret {sid} is not UTF-8 text")
            continue
        values[ref["path"]] = value
        data_b64[ref["path"]] = data[ref["key"]]
    return {"values": values, "data": data_b64, "missing": sorted(set(missing)), "versions": versions}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        # What these return is built from DataFlow text: marked unsafe, so no later templating pass
        # can evaluate a `{{ … }}` in it (the runtime's markUnsafe covers the input side).
        funcs = (dataflow_secret_refs, dataflow_secret_ids, dataflow_resolve_secrets)
        return {f.__name__: (lambda *a, _f=f: wrap_var(_f(*a))) for f in funcs}
