"""Two operators with leader election: one reconciles, the other waits; when the leader goes, the
other takes over. The second operator runs in a network namespace of its own (see netns.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import operator_namespace, wait_phase
from tests.e2e.kube import apply, kubectl, wait_for
from tests.e2e.netns import PeerHost
from tests.e2e.operator_process import ACQUIRED, OperatorProcess
from tests.e2e.test_operator import BROKERS, DSN, dataflow, secret

pytestmark = pytest.mark.e2e


def reconciled(log: str, namespace: str) -> bool:
    """The operator ran the role for a DataFlow of `namespace` (runner events name it)."""
    return re.search(rf'"namespace":"{namespace}"', log) is not None


@pytest.fixture
def two_operators(crd_installed: str, tmp_path: Path) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    require_tool("ansible-operator")
    lease_ns = operator_namespace("test_leader_election")
    kubectl("delete", "lease", "dataflow-operator.dataflow.io", "-n", lease_ns, "--ignore-not-found")
    peer = PeerHost()
    peer_kubeconfig = peer.up(Path(crd_installed), tmp_path / "peer.kubeconfig")
    first = OperatorProcess(tmp_path / "first.log", lease_ns).start()
    second = OperatorProcess(tmp_path / "second.log", lease_ns, prefix=peer.prefix(),
                             env={"KUBECONFIG": str(peer_kubeconfig), "K8S_AUTH_KUBECONFIG": str(peer_kubeconfig)})
    try:
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()
        peer.down()


def test_only_the_leader_reconciles_and_the_other_takes_over(
    two_operators: tuple[OperatorProcess, OperatorProcess], namespace: str
) -> None:
    first, second = two_operators
    leader = wait_for("a leader", lambda: next((o for o in (first, second) if ACQUIRED in o.log()), None), timeout=60)
    follower = second if leader is first else first
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("led", namespace))
    wait_phase(namespace, "led", "Running")
    assert reconciled(leader.log(), namespace)
    assert ACQUIRED not in follower.log()
    assert not reconciled(follower.log(), namespace)

    leader.stop()
    wait_for("the follower to take the lease", lambda: ACQUIRED in follower.log(), timeout=90)
    apply(dataflow("after", namespace))
    wait_phase(namespace, "after", "Running", timeout=180)
    assert reconciled(follower.log(), namespace)
