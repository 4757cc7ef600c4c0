"""Admission corpus run two ways — the real API server and the offline validator — in agreement.

Each case is applied with `kubectl apply --dry-run=server` to the local control plane with the CRD
and the ValidatingAdmissionPolicy installed, and validated offline by `dataflow_processor.admission`
(JSON schema from the CRD + the policy's CEL through cel-python). A case fails when either verdict
is wrong, when the expected message is missing from either, or when the two disagree.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from dataflow_processor.admission import validate_object
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.spec.loader import load_spec

from tests.admission.corpus import Case, load_cases

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "config/policy/validating-admission-policy.yaml"
NAMESPACE = "admission-corpus"
CASES = load_cases()


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=check, input=stdin, timeout=60)


def test_corpus_is_large_and_mixed() -> None:
    own = [c for c in CASES if not c.name.startswith("sample-")]
    assert len(own) >= 60
    assert 15 <= sum(c.valid for c in own) <= len(own) - 40
    assert len(CASES) - len(own) >= 15, "every shipped sample is a case"


@pytest.fixture(scope="module")
def cluster_with_policy(crd_installed: str) -> str:
    # The real server accepting the policy proves its CEL compiles within the cost limits.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY))
    kubectl("create", "namespace", NAMESPACE, check=False)
    # Policies are loaded asynchronously: wait until a known-invalid object is denied.
    probe = next(c for c in CASES if c.name == "invalid-kafka-brokers")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "denied request" in server_verdict(probe)[1]:
            return NAMESPACE
        time.sleep(1)
    pytest.fail("the ValidatingAdmissionPolicy never took effect")


def server_verdict(case: Case) -> tuple[bool, str]:
    proc = kubectl("apply", "--dry-run=server", "-n", NAMESPACE, "-f", str(case.path), check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


_offline: dict[str, list[str]] = {}


def offline_messages(case: Case) -> list[str]:
    """The offline verdict, computed once per case (cel-python takes ~0.5 s per object)."""
    if case.name not in _offline:
        _offline[case.name] = [str(v) for v in validate_object(case.obj)]
    return _offline[case.name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_offline_validator(case: Case) -> None:
    messages = offline_messages(case)
    if case.valid:
        assert messages == []
    else:
        assert any(case.expect in m for m in messages), messages


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_api_server_agrees(case: Case, cluster_with_policy: str) -> None:
    admitted, output = server_verdict(case)
    offline_admitted = not offline_messages(case)
    assert admitted == offline_admitted, f"server admitted={admitted}, offline admitted={offline_admitted}: {output}"
    if case.valid:
        assert admitted, output
    else:
        assert not admitted and case.expect in output, output


def test_policy_type_checks_clean(cluster_with_policy: str) -> None:
    """The controller-manager type-checks the policy against the CRD schema; no warnings expected."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = kubectl("get", "validatingadmissionpolicy", "dataflow.dataflow.io",
                      "-o", "jsonpath={.status.typeChecking}").stdout
        if out:
            assert "expressionWarnings" not in out, out
            return
        time.sleep(1)
    pytest.fail("policy status.typeChecking never written (is kube-controller-manager running?)")


@pytest.mark.parametrize("case", [c for c in CASES if c.valid], ids=[c.name for c in CASES if c.valid])
def test_processor_loads_every_admitted_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What admission lets in, the processor must be able to start: its own spec loader accepts the
    case (secret refs may stay unresolved here) and builds the chain and every connector from it."""
    monkeypatch.setenv("DATAFLOW_CHECKPOINT_DIR", str(tmp_path))  # a polling source's store, never a cluster's
    spec = load_spec(case.path, None, require_resolved=False)
    pipeline = Pipeline.from_spec(spec, namespace=NAMESPACE, name=case.name)
    assert pipeline.source.type_name == spec.source.type
