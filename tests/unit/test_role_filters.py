"""The role's filter plugins: finding, looking up and resolving secret refs; phase from a Deployment."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    path = REPO / "roles/dataflow/filter_plugins" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secrets = load("dataflow_secrets")
deployment = load("dataflow_deployment")

SPEC = {
    "source": {"type": "kafka", "kafka": {"brokersSecretRef": {"name": "k", "key": "brokers"}, "topic": "t",
                                          "sasl": {"passwordSecretRef": {"name": "k", "key": "pw", "namespace": "ops"}}}},
    "sink": {"type": "postgresql", "config": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"}, "table": "t"}},
    "transformations": [
        {"type": "filter", "filter": {"condition": "$.a"}},
        {"type": "router", "router": {"routes": [
            {"condition": "$.b", "sink": {"type": "trino", "trino": {"serverURLSecretRef": {"name": "tr", "key": "url"}}}},
        ]}},
    ],
}


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_refs_are_found_with_literal_twin_paths() -> None:
    refs = secrets.dataflow_secret_refs(SPEC, "shop")
    assert {r["path"]: (r["namespace"], r["name"], r["key"]) for r in refs} == {
        "source.kafka.brokers": ("shop", "k", "brokers"),
        "source.kafka.sasl.password": ("ops", "k", "pw"),
        "sink.config.connectionString": ("shop", "pg", "dsn"),
        "transformations.1.router.routes.0.sink.trino.serverURL": ("shop", "tr", "url"),
    }
    assert secrets.dataflow_secret_ids(refs) == ["ops/k", "shop/k", "shop/pg", "shop/tr"]


def test_resolution_names_missing_secret_and_key_without_values() -> None:
    refs = secrets.dataflow_secret_refs(SPEC, "shop")
    found = {
        "shop/k": [{"metadata": {"resourceVersion": "7"}, "data": {"brokers": b64("b:9092")}}],
        "ops/k": [{"metadata": {"resourceVersion": "9"}, "data": {}}],
        "shop/pg": [{"metadata": {"resourceVersion": "3"}, "data": {"dsn": b64("postgres://u:hunter2@h/db")}}],
        "shop/tr": [],
    }
    out = secrets.dataflow_resolve_secrets(refs, found)
    assert out["values"] == {"source.kafka.brokers": "b:9092", "sink.config.connectionString": "postgres://u:hunter2@h/db"}
    assert out["data"]["sink.config.connectionString"] == b64("postgres://u:hunter2@h/db")
    assert out["versions"] == {"shop/k": "7", "ops/k": "9", "shop/pg": "3"}
    assert out["missing"] == [
        "key pw not found in secret ops/k (referenced by source.kafka.sasl.passwordSecretRef)",
        "secret shop/tr not found (referenced by transformations.1.router.routes.0.sink.trino.serverURLSecretRef)",
    ]
    assert not any("hunter2" in m or "b:9092" in m for m in out["missing"])


def test_phase_follows_the_original_messages() -> None:
    assert deployment.dataflow_phase({}, 3) == {"phase": "Pending", "message": "Deployment not found",
                                                "observedGeneration": 3}
    starting = {"spec": {"replicas": 1}, "status": {}}
    assert deployment.dataflow_phase(starting, "2")["message"] == "Processor pod is starting"
    running = {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    assert deployment.dataflow_phase(running, 2) == {"phase": "Running", "message": "Processor pod is running",
                                                     "observedGeneration": 2}
    assert deployment.dataflow_phase({"spec": {"replicas": 0}, "status": {}}, 1)["phase"] == "Error"


def test_processor_image_is_read_from_the_operator_deployment() -> None:
    dep = {"spec": {"template": {"spec": {"containers": [
        {"name": "manager", "env": [{"name": "X", "value": "1"}, {"name": "PROCESSOR_IMAGE", "value": "reg/p:2"}]}]}}}}
    assert deployment.dataflow_container_env([dep], "PROCESSOR_IMAGE") == "reg/p:2"
    assert deployment.dataflow_container_env([], "PROCESSOR_IMAGE") == ""
