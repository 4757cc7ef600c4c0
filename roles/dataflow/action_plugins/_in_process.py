"""The plugin loader: run a module's work in Ansible's worker process rather than as a module process.

Why: a module runs as a fresh Python process from an AnsiballZ zip, whose module_utils
(`ansible.module_utils.basic` and everything it imports) are compiled from source on every run —
about 0.3 s of CPU per task before the first request, twice in every reconcile. The operator only
ever reconciles against localhost, so the same code (`module_utils/<module>.py`) runs here, in the
worker Ansible has already forked for the task. The modules of the same names (`library/`) stay
for `ansible -m` and for plays that run them on another host.

Not an action plugin itself (no task names it): the role's action plugins load it by path, once
per process under the name `dataflow_role_in_process`, since a role's controller-side plugins have
no package to import each other from.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.plugins.action import ActionBase

MODULE_UTILS = Path(__file__).parents[1] / "module_utils"


def _load(full_name: str, path: Path) -> ModuleType:
    """Import ``path`` once per process as ``full_name``."""
    if full_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(full_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full_name] = module
        spec.loader.exec_module(module)
    return sys.modules[full_name]


def module_util(name: str) -> ModuleType:
    # A role's module_utils are importable only inside AnsiballZ: load them by path, under the name
    # the modules import them by, so that their own imports of each other resolve too.
    return _load(f"ansible.module_utils.{name}", MODULE_UTILS / f"{name}.py")


def action_for(module_name: str) -> type[ActionBase]:
    """An action plugin class running ``module_utils/<module_name>.py``'s ``run`` in-process."""
    kube = module_util("dataflow_kube")
    operation = module_util(module_name)

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

