"""The names of what a DataFlow owns: the role's one definition and the processor's agree, and the
role makes and removes exactly the objects so named."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from dataflow_processor.connectors.checkpoint import configmap_name
from dataflow_processor.owned_names import owned_names

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/dataflow"
NAMES = ["orders", "a", "orders-eu-1", "x" * 40]


def load_filter() -> ModuleType:
    path = ROLE / "filter_plugins/dataflow_names.py"
    spec = importlib.util.spec_from_file_location("dataflow_names", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def templar(role_plugins: None) -> Any:
    """Ansible's templar with the role's plugins and its derived vars, for DataFlow ``shop/orders``."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    role_vars = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    variables = {
        "ansible_operator_meta": {"name": "orders", "namespace": "shop"},
        "dataflow_name": role_vars["dataflow_name"],
        "dataflow_namespace": role_vars["dataflow_namespace"],
        "dataflow_owned": role_vars["dataflow_owned"],
    }
    return Templar(loader=DataLoader(), variables=variables)


@pytest.mark.parametrize("name", NAMES)
def test_the_role_and_the_processor_name_the_objects_alike(name: str) -> None:
    from_role = load_filter().dataflow_owned_names(name)
    assert from_role == owned_names(name)
    assert configmap_name(name) == from_role["checkpoint"]  # where the processor keeps its checkpoint


def test_the_filter_the_role_uses_is_that_definition(templar: Any) -> None:
    assert templar.template("{{ dataflow_owned }}") == owned_names("orders")
    assert owned_names("orders") == {
        "deployment": "dataflow-orders",
        "spec": "dataflow-orders-spec",
        "secrets": "dataflow-orders-secrets",
        "checkpoint": "dataflow-orders-checkpoint",
        "processor": "dataflow-orders-processor",
    }


def test_deletion_removes_what_the_template_makes_and_the_checkpoint(templar: Any) -> None:
    (remove,) = [t for t in yaml.safe_load((ROLE / "tasks/delete.yml").read_text()) if "dataflow_apply" in t]
    removed = {(d["kind"], templar.template(d["metadata"]["name"])) for d in remove["dataflow_apply"]["definitions"]}
    assert {templar.template(d["metadata"]["namespace"]) for d in remove["dataflow_apply"]["definitions"]} == {"shop"}

    templar.available_variables = {
        **templar.available_variables,
        **{k: v for k, v in yaml.safe_load((ROLE / "defaults/main.yml").read_text()).items() if "lookup(" not in str(v)},
        "dataflow_name": "orders",
        "dataflow_namespace": "shop",
        "dataflow_uid": "uid-1",
        "dataflow_spec": {},
        "dataflow_secret_data": {},
        "dataflow_spec_hash": "h",
        "dataflow_image": "reg/proc:1",
        "dataflow_processor_log_level": "info",
    }
    made = yaml.safe_load_all(templar.template((ROLE / "templates/objects.yaml.j2").read_text()))
    names = owned_names("orders")
    assert {(d["kind"], d["metadata"]["name"]) for d in made if d} | {("ConfigMap", names["checkpoint"])} == removed
