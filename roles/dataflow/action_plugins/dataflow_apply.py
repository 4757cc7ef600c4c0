"""Action plugin: run `dataflow_apply` in Ansible's worker process rather than as a module process.

Why: a module runs as a fresh Python process from an AnsiballZ zip, whose module_utils
(`ansible.module_utils.basic` and everything it imports) are compiled from source on every run —
about 0.3 s of CPU per task before the first request, twice in every reconcile. The operator only
ever reconciles against localhost, so the same code (`module_utils/dataflow_objects.py`) runs here,
in the worker Ansible has already forked for the task. The module of the same name stays for
`ansible -m` and for plays that run it on another host.

This file also holds what the role's other controller-side plugins share (`module_util`,
`action_for`): the `dataflow_status` action loads it by path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.plugins.action import ActionBase


def module_util(name: str) -> ModuleType:
    # A role's module_utils are importable only inside AnsiballZ: load them by path, under the name
    # the modules import them by, so that their own imports of each other resolve too.
    full = f"ansible.module_utils.{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, Path(__file__).parents[1] / "module_utils" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]


def action_for(operation_name: str) -> type[ActionBase]:
    """An action plugin class running ``module_utils/<operation_name>.py``'s ``run`` in-process."""
    kube = module_util("dataflow_kube")
    operation = module_util(operation_name)

    class InProcessAction(ActionBase):
        TRANSFERS_FILES = False
        _requires_connection = False

        def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
            result: dict[str, Any] = super().run(tmp, task_vars)
            _, args = self.validate_argument_spec(argument_spec=operation.ARGUMENT_SPEC)
            try:
                result.update(operation.run(args, bool(self._task.check_mode)))
            except kube.TaskFailed as exc:
                result.update(failed=True, msg=exc.msg, **exc.extra)
            return result

    return InProcessAction


ActionModule = action_for("dataflow_objects")
