"""Server-side apply (or delete) of the namespaced objects a DataFlow owns: `dataflow_apply`.

Shared by the `dataflow_apply` module and the action plugin of the same name (which the role runs:
see `action_plugins/_in_process.py` for why).

Server-side apply (field manager `dataflow-operator`, forced) is the sole owner of every field it
sets, so a field removed from the template is removed from the object, and fields others set (the
deployment controller's revision annotation, defaults) are left alone. Re-applying an unchanged
object does not write it: `changed` compares resourceVersions before and after.

In check mode nothing is written: the API server computes the apply as a dry run (`dryRun=All`),
and `changed` says whether the stored object would differ from what it is now (`resourceVersion`
and the managers' timestamps aside, which a dry run does not settle).

Under the ansible-operator runtime the requests go through its proxy, which starts watching a kind
of owned object when it sees a create (POST) of one. An apply creates with PATCH, so after creating
an object this also POSTs it once; the answer is "already exists", and the proxy now watches that
kind for the DataFlow (a change to an owned object, or its deletion, reconciles the DataFlow).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any

from ansible.module_utils.dataflow_kube import KubeClient, KubeError, TaskFailed, resource_path

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "definitions": {"type": "list", "elements": "dict", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "field_manager": {"type": "str", "default": "dataflow-operator"},
    "kubeconfig": {"type": "str", "required": False},
    # Return a refusal as `error` (a message without secret values) instead of failing: the role's
    # apply task is censored (`no_log`), and the refusal belongs in the DataFlow's status.
    "report_errors": {"type": "bool", "default": False},
}

# The kinds the role owns; their REST names (no discovery round trip per run).
PLURALS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("apps/v1", "Deployment"): "deployments",
}


def _path(obj: dict[str, Any]) -> str:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key not in PLURALS:
        raise KubeError(0, f"dataflow_apply does not handle {key[1]} ({key[0]})")
    meta = obj.get("metadata") or {}
    return resource_path(key[0], PLURALS[key], meta.get("namespace"), meta.get("name"))


def _shown(obj: dict[str, Any]) -> dict[str, Any]:
    # A Secret's values stay out of the registered result (and so out of any later debug output).
    if obj.get("kind") == "Secret":
        return {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    return obj


def _get(api: KubeClient, path: str) -> dict[str, Any] | None:
    try:
        return api.request("GET", path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What of an object a write changes, without the bookkeeping a dry run does not settle."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    if "managedFields" in meta:
        meta["managedFields"] = [{k: v for k, v in entry.items() if k != "time"} for entry in meta["managedFields"]]
    return {**obj, "metadata": meta}


def apply(api: KubeClient, obj: dict[str, Any], manager: str, check: bool) -> dict[str, Any]:
    path = _path(obj)
    before = _get(api, path)
    query = {"fieldManager": manager, "force": "true"}
    if check:
        would_be = api.request("PATCH", path, obj, content_type="application/apply-patch+yaml",
                               query={**query, "dryRun": "All"})
        changed = before is None or _stored(before) != _stored(would_be)
        return {"changed": changed, "object": _shown(would_be)}
    after = api.request("PATCH", path, obj, content_type="application/apply-patch+yaml", query=query)
    if before is None:
        collection = path.rsplit("/", 1)[0]
        try:  # lets the runtime's proxy register its watch on this kind (see the docstring)
            api.request("POST", collection, obj, query={"fieldManager": manager})
        except KubeError as exc:
            if exc.status != 409:
                raise
    old_version = (before or {}).get("metadata", {}).get("resourceVersion")
    changed = old_version != after.get("metadata", {}).get("resourceVersion")
    return {"changed": changed, "object": _shown(after)}


def delete(api: KubeClient, obj: dict[str, Any], check: bool) -> dict[str, Any]:
    path = _path(obj)
    if check:
        return {"changed": _get(api, path) is not None}
    try:
        api.request("DELETE", path, {"propagationPolicy": "Background"})
    except KubeError as exc:
        if exc.status == 404:
            return {"changed": False}
        raise
    return {"changed": True}


def _secret_values(definitions: list[dict[str, Any]]) -> list[str]:
    values = []
    for obj in definitions:
        if obj.get("kind") != "Secret":
            continue
        for encoded in (obj.get("data") or {}).values():
            with contextlib.suppress(binascii.Error, ValueError):
                values.append(base64.b64decode(str(encoded), validate=True).decode("utf-8", "replace"))
            values.append(str(encoded))
        values.extend(str(v) for v in (obj.get("stringData") or {}).values())
    # Longest first, so a value that contains another is masked whole.
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def redact(message: str, definitions: list[dict[str, Any]]) -> str:
    """`message` with every secret value of `definitions` (decoded and as base64) masked."""
    for value in _secret_values(definitions):
        message = message.replace(value, "***")
    return message


def run(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Apply or delete every definition in order; the task result, or :class:`TaskFailed`."""
    results = []
    what = "the API server"
    try:
        api = KubeClient(params.get("kubeconfig"))
        for obj in params["definitions"]:
            meta = obj.get("metadata") or {}
            what = f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
            if params["state"] == "present":
                outcome = apply(api, obj, params["field_manager"], check_mode)
            else:
                outcome = delete(api, obj, check_mode)
            results.append({"kind": obj.get("kind"), "name": meta.get("name"), **outcome})
    except KubeError as exc:
        message = f"{params['state']} {what}: {exc.reason}"
        if params.get("report_errors"):
            # The API server's own words (which field, which limit): they carry no secret data, and
            # any secret value they might echo is masked anyway.
            return {"changed": any(r["changed"] for r in results), "results": results,
                    "error": redact(message, params["definitions"])}
        raise TaskFailed(message, body=exc.body, results=results) from None
    return {"changed": any(r["changed"] for r in results), "results": results}
