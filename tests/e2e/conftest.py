"""Fixtures of the end-to-end suite: the CRD on the local control plane and a running operator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.kube import kubectl, wait_for
from tests.e2e.operator_process import OperatorProcess


@pytest.fixture(scope="session")
def operator_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator")


@pytest.fixture(scope="module")
def operator(crd_installed: str, operator_logs: Path, request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    require_tool("ansible-operator")
    require_tool("ansible-runner")
    name = request.module.__name__.rsplit(".", 1)[-1]
    # Each module's operator has its own lease namespace: a stopped operator's lease never delays
    # the next module's (the lease would otherwise be held until it expires).
    lease_ns = operator_namespace(name)
    proc = OperatorProcess(operator_logs / f"{name}.log", lease_ns,
                           env=getattr(request.module, "OPERATOR_ENV", {})).start()
    yield proc
    proc.stop()


def operator_namespace(module: str) -> str:
    ns = "dfop-" + module.removeprefix("test_").replace("_", "-")[:40]
    kubectl("create", "namespace", ns, check=False)
    return ns


@pytest.fixture
def namespace(crd_installed: str) -> Iterator[str]:
    ns = f"e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    yield ns
    # Let the operator's finalizer run before the namespace goes (it is still running here).
    kubectl("delete", "dataflows", "--all", "-n", ns, "--wait=true", "--timeout=60s", check=False)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def wait_phase(namespace: str, name: str, phase: str, timeout: float = 120) -> dict:
    from tests.e2e.kube import get

    def probe() -> dict | None:
        obj = get("dataflow", name, namespace)
        return obj if obj and (obj.get("status") or {}).get("phase") == phase else None

    return wait_for(f"DataFlow {namespace}/{name} phase {phase}", probe, timeout)
