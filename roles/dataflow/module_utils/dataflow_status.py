"""Write a custom resource's status through the status subresource: `dataflow_status`.

Shared by the `dataflow_status` module and the action plugin of the same name (which the role runs).
The upstream `operator_sdk.util.k8s_status` module cannot be obtained here (Galaxy only), so the
role has this small one of its own. It merges the given `status` keys into the current status (keys
it is not given, such as the processor's counters, are kept), merges `conditions` by `type` (keeping
`lastTransitionTime` while a condition's status does not change), and patches only when something
differs — so a reconcile with nothing new reports `changed: false`.
"""

from __future__ import annotations

import datetime
from typing import Any

from ansible.module_utils.dataflow_kube import KubeClient, KubeError, TaskFailed, resource_path

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "api_version": {"type": "str", "required": True},
    "kind": {"type": "str", "required": True},
    "plural": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "required": True},
    "status": {"type": "dict", "default": {}},
    "conditions": {"type": "list", "elements": "dict", "default": []},
    "kubeconfig": {"type": "str", "required": False},
}

INTEGER_KEYS = ("observedGeneration", "processedCount", "errorCount")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: list[dict[str, Any]], wanted: list[dict[str, Any]], generation: Any
) -> list[dict[str, Any]]:
    by_type = {c.get("type"): dict(c) for c in current or []}
    for w in wanted:
        old = by_type.get(w["type"], {})
        new = {k: v for k, v in w.items() if v is not None}
        # Templating turns "True"/"False" into booleans; a condition's status is a string.
        if isinstance(new.get("status"), bool):
            new["status"] = "True" if new["status"] else "False"
        new.setdefault("reason", old.get("reason", ""))
        new.setdefault("message", "")
        if generation is not None:
            new["observedGeneration"] = int(generation)
        same = old.get("status") == new.get("status")
        new["lastTransitionTime"] = old.get("lastTransitionTime") if same and old.get("lastTransitionTime") else _now()
        by_type[w["type"]] = new
    return sorted(by_type.values(), key=lambda c: str(c.get("type")))


def run(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Merge the wanted status into the object's; the task result, or :class:`TaskFailed`."""
    what = f"{params['kind']} {params['namespace']}/{params['name']}"
    path = resource_path(params["api_version"], params["plural"], params["namespace"], params["name"])
    try:
        api = KubeClient(params.get("kubeconfig"))
        obj = api.request("GET", path)
    except KubeError as exc:
        if exc.status == 404:
            return {"changed": False, "status": {}, "msg": "object not found"}
        raise TaskFailed(f"reading {what}: {exc.reason}") from None

    current = obj.get("status") or {}
    desired = dict(current)
    desired.update({k: v for k, v in params["status"].items() if v is not None})
    # Values templated into a dict argument arrive as text; the schema wants integers here.
    for key in INTEGER_KEYS:
        if key in desired and desired[key] is not None:
            desired[key] = int(desired[key])
    if params["conditions"]:
        generation = params["status"].get("observedGeneration", obj.get("metadata", {}).get("generation"))
        desired["conditions"] = merge_conditions(current.get("conditions", []), params["conditions"], generation)

    if desired == current:
        return {"changed": False, "status": current}
    if check_mode:
        return {"changed": True, "status": desired}
    # Only the keys that differ: the processor patches its counters concurrently, and an unchanged
    # key sent back with a stale value would overwrite its newer one.
    body = {"status": {k: v for k, v in desired.items() if current.get(k) != v}}
    try:
        api.request("PATCH", path + "/status", body, content_type="application/merge-patch+json")
    except KubeError as exc:
        raise TaskFailed(f"patching status of {what}: {exc.reason}", body=exc.body) from None
    return {"changed": True, "status": desired}
