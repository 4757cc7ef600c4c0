#!/usr/bin/python
"""Ansible module: server-side apply (or delete) the namespaced objects a DataFlow owns.

The work is in `module_utils/dataflow_apply.py`. The role runs it through the action plugin of
the same name, in Ansible's worker process; this module is the same operation for `ansible -m` and
for any play that runs it on another host.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dataflow_apply import ARGUMENT_SPEC, run
from ansible.module_utils.dataflow_kube import TaskFailed

DOCUMENTATION = r"""
module: dataflow_apply
short_description: Server-side apply or delete namespaced objects (the role's owned objects)
options:
  definitions:
    type: list
    elements: dict
    required: true
    description: objects to apply (they hold Secret values; the role sets no_log on the task)
  state: {type: str, default: present, choices: [present, absent]}
  field_manager: {type: str, default: dataflow-operator}
  kubeconfig: {type: str, description: defaults to K8S_AUTH_KUBECONFIG or KUBECONFIG}
"""

RETURN = r"""
results:
  type: list
  returned: always
  description: per object kind, name, changed, and the object as stored (a Secret without its data)
"""


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        module.exit_json(**run(module.params, module.check_mode))
    except TaskFailed as exc:
        module.fail_json(msg=exc.msg, **exc.extra)


if __name__ == "__main__":
    main()
