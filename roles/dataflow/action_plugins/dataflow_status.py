"""Action plugin: run `dataflow_status` in Ansible's worker process (why: `dataflow_apply.py` here).

The work is in `module_utils/dataflow_status_patch.py`, shared with the module of the same name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("dataflow_role_actions", Path(__file__).with_name("dataflow_apply.py"))
assert _spec is not None and _spec.loader is not None
_actions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_actions)

ActionModule = _actions.action_for("dataflow_status_patch")
