"""Names of the objects the operator owns for a DataFlow, as the processor must know them.

The operator makes them (``roles/dataflow``), the processor reads its spec and secrets from them
and keeps its checkpoint in one. Both sides spell the names in one place each: here, and in the
role's ``dataflow_owned_names`` filter (``roles/dataflow/filter_plugins/dataflow_names.py``);
``tests/unit/test_owned_names.py`` checks that the two agree.
"""

from __future__ import annotations


def owned_names(name: str) -> dict[str, str]:
    """The name of each object the operator owns for DataFlow ``name``, by what it is."""
    return {
        "deployment": f"dataflow-{name}",  # the processor Deployment
        "spec": f"dataflow-{name}-spec",  # ConfigMap, key spec.json: the spec as written
        "secrets": f"dataflow-{name}-secrets",  # Secret: the resolved secret references
        "checkpoint": f"dataflow-{name}-checkpoint",  # ConfigMap the processor writes its checkpoint to
        "processor": f"dataflow-{name}-processor",  # ServiceAccount, Role and RoleBinding of the processor
    }


def checkpoint_configmap(name: str) -> str:
    """The ConfigMap a polling source of DataFlow ``name`` keeps its checkpoint in."""
    return owned_names(name)["checkpoint"]
