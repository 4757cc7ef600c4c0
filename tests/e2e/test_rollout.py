"""Changing the operator Deployment's PROCESSOR_IMAGE moves every processor to the new image."""

from __future__ import annotations

from functools import partial

import pytest

from tests.e2e.conftest import operator_namespace, wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import BROKERS, DSN, dataflow, secret

pytestmark = pytest.mark.e2e
OPERATOR_NS = operator_namespace("test_rollout")
OPERATOR_ENV = {"OPERATOR_DEPLOYMENT_NAME": "dataflow-operator", "OPERATOR_NAMESPACE": OPERATOR_NS}


def operator_deployment(image: str) -> dict:
    labels = {"app.kubernetes.io/name": "dataflow-operator", "app.kubernetes.io/component": "operator"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "dataflow-operator", "namespace": OPERATOR_NS, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "manager", "image": "localhost/dataflow-operator:1",
                                     "env": [{"name": "PROCESSOR_IMAGE", "value": image}]}]}}},
    }


def image_of(ns: str, name: str) -> str:
    dep = get("deployment", f"dataflow-{name}", ns) or {}
    containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    return str(containers[0].get("image", ""))


def on_image(ns: str, name: str, image: str) -> bool:
    return image_of(ns, name) == image


def test_processor_image_follows_the_operator_deployment(operator: OperatorProcess, namespace: str) -> None:
    apply(operator_deployment("registry.example/processor:v1"))
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    pinned = dataflow("pinned", namespace)
    pinned["spec"]["processorImage"] = "mine/processor:7"
    for df in (dataflow("one", namespace), dataflow("two", namespace), pinned):
        apply(df)
    for name in ("one", "two", "pinned"):
        wait_phase(namespace, name, "Running")
    assert image_of(namespace, "one") == image_of(namespace, "two") == "registry.example/processor:v1"

    kubectl("set", "env", "deployment/dataflow-operator", "-n", OPERATOR_NS, "PROCESSOR_IMAGE=registry.example/processor:v2")
    for name in ("one", "two"):
        wait_for(f"{name} on the new image", partial(on_image, namespace, name, "registry.example/processor:v2"))
    assert image_of(namespace, "pinned") == "mine/processor:7"
