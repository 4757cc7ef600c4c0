"""Action plugin: run `dataflow_status` (`module_utils/dataflow_status.py`) in Ansible's worker process.

Why in-process, and how: `_in_process.py` here, the role's plugin loader.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "dataflow_role_in_process" not in sys.modules:
    _loader_path = Path(__file__).with_name("_in_process.py")
    _spec = importlib.util.spec_from_file_location("dataflow_role_in_process", _loader_path)
    assert _spec is not None and _spec.loader is not None
    sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_spec.name])

ActionModule = sys.modules["dataflow_role_in_process"].action_for("dataflow_status")
