"""A new processor image reaches every processor when the operator restarts with it.

In a cluster the operator's `PROCESSOR_IMAGE` is an env value of its own Deployment: changing it
rolls the operator pod, and the new pod's first pass reconciles every DataFlow. Here the operator
is a local process, so the test restarts it with the new value, which is the same event.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.conftest import operator_namespace, wait_phase
from tests.e2e.kube import apply, get, wait_for
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import BROKERS, DSN, dataflow, secret

pytestmark = pytest.mark.e2e


def image_of(ns: str, name: str) -> str:
    dep = get("deployment", f"dataflow-{name}", ns) or {}
    containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    return str(containers[0].get("image", ""))


def on_image(ns: str, name: str, image: str) -> bool:
    return image_of(ns, name) == image


class Operators:
    """Operators started one after another; the last one still runs while the namespace is cleaned up."""

    def __init__(self, logs: Path) -> None:
        self.logs, self.lease_ns = logs, operator_namespace("test_rollout")
        self.running: OperatorProcess | None = None

    def restart_with(self, image: str) -> None:
        if self.running:
            self.running.stop()
        env = {"PROCESSOR_IMAGE": image, "PROCESSOR_IMAGE_ALLOWED_PREFIXES": "mine/"}
        self.running = OperatorProcess(self.logs / f"rollout-{image.rsplit(':', 1)[1]}.log", self.lease_ns,
                                       env=env).start()
        self.running.wait_leader()


@pytest.fixture
def operators(crd_installed: str, operator_logs: Path) -> Iterator[Operators]:
    ops = Operators(operator_logs)
    yield ops
    if ops.running:
        ops.running.stop()


# `operators` before `namespace`: set up first, torn down last, after the namespace's DataFlows
# (whose finalizer needs an operator) are gone.
def test_processors_follow_the_operator_image_on_restart(operators: Operators, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    pinned = dataflow("pinned", namespace)
    pinned["spec"]["processorImage"] = "mine/processor:7"
    operators.restart_with("registry.example/processor:v1")
    for df in (dataflow("one", namespace), dataflow("two", namespace), pinned):
        apply(df)
    for name in ("one", "two", "pinned"):
        wait_phase(namespace, name, "Running")
    assert image_of(namespace, "one") == image_of(namespace, "two") == "registry.example/processor:v1"

    operators.restart_with("registry.example/processor:v2")
    for name in ("one", "two"):
        wait_for(f"{name} on the new image", partial(on_image, namespace, name, "registry.example/processor:v2"))
    assert image_of(namespace, "pinned") == "mine/processor:7"
