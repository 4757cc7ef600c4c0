#!/usr/bin/python
"""Ansible module: write a custom resource's status through the status subresource.

The upstream `operator_sdk.util.k8s_status` module cannot be obtained here (Galaxy only), so the
role ships this small one of its own. It merges the given `status` keys into the current status
(keys it is not given, such as the processor's counters, are kept), merges `conditions` by `type`
(keeping `lastTransitionTime` while a condition's status does not change), and patches only when
something differs — so a reconcile with nothing new reports `changed: false`.
"""

from __future__ import annotations

import datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dataflow_kube import KubeClient, KubeError, resource_path

DOCUMENTATION = r"""
module: dataflow_status
short_description: Patch the status subresource of a namespaced custom resource
options:
  api_version: {type: str, required: true, description: group/version of the resource}
  kind: {type: str, required: true}
  plural: {type: str, required: true}
  name: {type: str, required: true}
  namespace: {type: str, required: true}
  status: {type: dict, default: {}, description: keys merged into .status}
  conditions: {type: list, elements: dict, default: [], description: conditions merged by type}
  kubeconfig: {type: str, description: defaults to K8S_AUTH_KUBECONFIG or KUBECONFIG}
"""

RETURN = r"""
status: {type: dict, returned: always, description: the status after the call}
"""


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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "api_version": {"type": "str", "required": True},
            "kind": {"type": "str", "required": True},
            "plural": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "status": {"type": "dict", "default": {}},
            "conditions": {"type": "list", "elements": "dict", "default": []},
            "kubeconfig": {"type": "str", "required": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    path = resource_path(p["api_version"], p["plural"], p["namespace"], p["name"])
    try:
        api = KubeClient(p["kubeconfig"])
        obj = api.request("GET", path)
    except KubeError as exc:
        if exc.status == 404:
            module.exit_json(changed=False, status={}, msg="object not found")
        module.fail_json(msg=f"reading {p['kind']} {p['namespace']}/{p['name']}: {exc.reason}")
        return

    current = obj.get("status") or {}
    desired = dict(current)
    desired.update({k: v for k, v in p["status"].items() if v is not None})
    # Values templated into a dict argument arrive as text; the schema wants integers here.
    for key in INTEGER_KEYS:
        if key in desired and desired[key] is not None:
            desired[key] = int(desired[key])
    if p["conditions"]:
        generation = p["status"].get("observedGeneration", obj.get("metadata", {}).get("generation"))
        desired["conditions"] = merge_conditions(current.get("conditions", []), p["conditions"], generation)

    if desired == current:
        module.exit_json(changed=False, status=current)
    if module.check_mode:
        module.exit_json(changed=True, status=desired)
    # Only the keys that differ: the processor patches its counters concurrently, and an unchanged
    # key sent back with a stale value would overwrite its newer one.
    body = {"status": {k: v for k, v in desired.items() if current.get(k) != v}}
    try:
        api.request("PATCH", path + "/status", body, content_type="application/merge-patch+json")
    except KubeError as exc:
        module.fail_json(msg=f"patching status of {p['kind']} {p['namespace']}/{p['name']}: {exc.reason}",
                         body=exc.body)
    module.exit_json(changed=True, status=desired)


if __name__ == "__main__":
    main()
