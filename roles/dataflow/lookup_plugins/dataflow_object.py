"""Lookup: one namespaced object read through the role's REST client, as a one-item list, or [].

    query('dataflow_object', api_version='apps/v1', plural='deployments', namespace=ns, name=name)

The role reads the operator's own Deployment on every reconcile (for its PROCESSOR_IMAGE). The
`kubernetes.core.k8s` lookup would import the `kubernetes` package for that, about 0.7 s of CPU per
reconcile; this costs one GET. An empty name or namespace, or a missing object, gives [].
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

# The role's controller-side plugins load its module_utils through one helper (see there why).
_spec = importlib.util.spec_from_file_location(
    "dataflow_role_actions", Path(__file__).parents[1] / "action_plugins" / "dataflow_apply.py")
assert _spec is not None and _spec.loader is not None
_actions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_actions)
kube = _actions.module_util("dataflow_kube")


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        name, namespace = kwargs.get("name") or "", kwargs.get("namespace") or ""
        if not name or not namespace:
            return []
        path = kube.resource_path(kwargs["api_version"], kwargs["plural"], namespace, name)
        try:
            return [kube.KubeClient(kwargs.get("kubeconfig")).request("GET", path)]
        except kube.KubeError as exc:
            if exc.status == 404:
                return []
            raise AnsibleError(f"reading {kwargs['plural']} {namespace}/{name}: {exc.reason}") from None
