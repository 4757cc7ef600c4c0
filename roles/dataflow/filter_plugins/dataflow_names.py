"""The names of what a DataFlow owns, spelled once for the role.

- `dataflow_owned_names(name)` → `{deployment, spec, secrets, checkpoint, processor}`: the processor
  Deployment, the spec ConfigMap, the resolved-secrets Secret, the checkpoint ConfigMap the
  processor writes, and the processor's ServiceAccount, Role and RoleBinding.

The template, `tasks/delete.yml` and molecule's verify read them from here. The processor spells
the same names in `dataflow_processor/owned_names.py`; `tests/unit/test_owned_names.py` checks
that the two agree.
"""

from __future__ import annotations

from typing import Any

from ansible.utils.unsafe_proxy import wrap_var


def dataflow_owned_names(name: Any) -> dict[str, str]:
    name = str(name)
    return {
        "deployment": f"dataflow-{name}",
        "spec": f"dataflow-{name}-spec",
        "secrets": f"dataflow-{name}-secrets",
        "checkpoint": f"dataflow-{name}-checkpoint",
        "processor": f"dataflow-{name}-processor",
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        # Built from the DataFlow's name: marked unsafe like every other filter output made of DataFlow text.
        return {"dataflow_owned_names": lambda name: wrap_var(dataflow_owned_names(name))}
