#!/usr/bin/python
"""Ansible module: write a custom resource's status through the status subresource.

The work is in `module_utils/dataflow_status.py`. The role runs it through the action plugin
of the same name, in Ansible's worker process; this module is the same operation for `ansible -m`
and for any play that runs it on another host.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dataflow_kube import TaskFailed
from ansible.module_utils.dataflow_status import ARGUMENT_SPEC, run

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


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        module.exit_json(**run(module.params, module.check_mode))
    except TaskFailed as exc:
        module.fail_json(msg=exc.msg, **exc.extra)


if __name__ == "__main__":
    main()
