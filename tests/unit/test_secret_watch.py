"""The secret watcher's index: which DataFlows a Secret change must reconcile."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secret_watch", REPO / "roles/dataflow/files/secret_watch.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["secret_watch"] = module
    spec.loader.exec_module(module)
    return module


watch = load()


def df(ns: str, name: str, *refs: dict[str, str]) -> dict:
    sink: dict = {"type": "postgresql", "postgresql": {"table": "t"}}
    for i, ref in enumerate(refs):
        sink["postgresql"][f"f{i}SecretRef"] = ref
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"sink": sink}}


def test_a_changed_secret_names_the_dataflows_that_reference_it() -> None:
    index = watch.Index()
    index.set_dataflow(df("shop", "a", {"name": "pg", "key": "dsn"}))
    index.set_dataflow(df("shop", "b", {"name": "pg", "key": "dsn"}, {"name": "kafka", "key": "pw"}))
    index.set_dataflow(df("other", "c", {"name": "pg", "key": "dsn"}))
    assert index.secret_changed("shop", "pg", "1") == ["a", "b"]
    assert index.secret_changed("shop", "pg", "1") == []  # same version: nothing to do
    assert index.secret_changed("shop", "pg", "2") == ["a", "b"]
    assert index.secret_changed("shop", "kafka", "5") == ["b"]
    assert index.secret_changed("shop", "unrelated", "5") == []


def test_references_follow_the_spec_and_foreign_ones_are_ignored() -> None:
    index = watch.Index()
    index.set_dataflow(df("shop", "a", {"name": "pg", "key": "dsn"}, {"name": "x", "key": "k", "namespace": "ops"}))
    assert index.secret_changed("ops", "x", "1") == []  # another namespace's Secret is never followed
    index.set_dataflow(df("shop", "a", {"name": "kafka", "key": "pw"}))
    assert index.secret_changed("shop", "pg", "1") == []
    assert index.secret_changed("shop", "kafka", "1") == ["a"]
    index.drop_dataflow(df("shop", "a"))
    assert index.secret_changed("shop", "kafka", "2") == []
