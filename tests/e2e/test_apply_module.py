"""The role's own modules (`dataflow_apply`, `dataflow_status`) and plugins against the real API server.

Each operation runs both ways Ansible can run it: as the module (`ansible localhost -m …` with the
role's library and module_utils: a module process from an AnsiballZ zip) and through the role's
action plugin of the same name (in Ansible's worker process: how the role runs it). The admin
kubeconfig of the local environment (token + CA file) exercises the stdlib REST client's kubeconfig
handling; the operator's proxy kubeconfig is covered by test_operator.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.e2e.kube import get, kubectl

ROLE = Path(__file__).resolve().parents[2] / "roles/dataflow"


WAYS = ["module", "action"]


def ansible_adhoc(module: str, args: str, env_extra: dict[str, str] | None = None, check: bool = False) -> dict[str, Any]:
    require_tool("ansible")
    env = {**os.environ, "ANSIBLE_LIBRARY": str(ROLE / "library"), "ANSIBLE_MODULE_UTILS": str(ROLE / "module_utils"),
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", **(env_extra or {})}
    proc = subprocess.run(["ansible", "localhost", "-c", "local", "-m", module, "-a", args,
                           "-e", "ansible_python_interpreter=" + os.path.realpath(sys.executable),
                           *(["--check"] if check else [])],
                          capture_output=True, text=True, env=env, timeout=120)
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def run_module(name: str, args: dict[str, Any], way: str, env_extra: dict[str, str] | None = None,
               check: bool = False) -> dict[str, Any]:
    extra = dict(env_extra or {})
    if way == "action":
        extra["ANSIBLE_ACTION_PLUGINS"] = str(ROLE / "action_plugins")
    result = ansible_adhoc(name, json.dumps(args), extra, check)
    # Only a module process reports its invocation: this tells which way really ran.
    assert ("invocation" in result) == (way == "module"), result
    return result


def deployment(ns: str, node_selector: dict[str, str] | None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "processor", "image": "example/processor:1"}]}
    if node_selector:
        pod["nodeSelector"] = node_selector
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "proc", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "proc"}},
                     "template": {"metadata": {"labels": {"app": "proc"}}, "spec": pod}}}


def secret(ns: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
            "type": "Opaque", "data": {"password": value}}


@pytest.fixture
def ns(crd_installed: str) -> Iterator[str]:
    name = f"mod-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("way", WAYS)
def test_apply_creates_then_changes_nothing_then_removes_a_dropped_field(way: str, ns: str) -> None:
    first = run_module("dataflow_apply", {"definitions": [deployment(ns, {"disk": "ssd"}), secret(ns, "c2VjcmV0")]}, way)
    assert first["changed"] is True, first
    assert [r["changed"] for r in first["results"]] == [True, True]
    # The registered result never carries a Secret's values (the role's task also sets no_log).
    assert "data" not in first["results"][1]["object"]
    assert "c2VjcmV0" not in json.dumps(first["results"])
    assert get("deployment", "proc", ns)["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}  # type: ignore[index]

    rv = get("deployment", "proc", ns)["metadata"]["resourceVersion"]  # type: ignore[index]
    again = run_module("dataflow_apply", {"definitions": [deployment(ns, {"disk": "ssd"}), secret(ns, "c2VjcmV0")]}, way)
    assert again["changed"] is False, again
    assert get("deployment", "proc", ns)["metadata"]["resourceVersion"] == rv  # type: ignore[index]

    # Server-side apply owns what it set: a field dropped from the template leaves the object.
    dropped = run_module("dataflow_apply", {"definitions": [deployment(ns, None)]}, way)
    assert dropped["changed"] is True
    assert "nodeSelector" not in get("deployment", "proc", ns)["spec"]["template"]["spec"]  # type: ignore[index]


@pytest.mark.parametrize("way", WAYS)
def test_check_mode_reports_what_would_change_and_writes_nothing(way: str, ns: str) -> None:
    definitions = [deployment(ns, {"disk": "ssd"}), secret(ns, "c2VjcmV0")]
    planned = run_module("dataflow_apply", {"definitions": definitions}, way, check=True)
    assert planned["changed"] is True and [r["changed"] for r in planned["results"]] == [True, True], planned
    assert get("deployment", "proc", ns) is None and get("secret", "creds", ns) is None
    assert "c2VjcmV0" not in json.dumps(planned["results"])

    run_module("dataflow_apply", {"definitions": definitions}, way)
    rv = get("deployment", "proc", ns)["metadata"]["resourceVersion"]  # type: ignore[index]
    same = run_module("dataflow_apply", {"definitions": definitions}, way, check=True)
    assert same["changed"] is False and [r["changed"] for r in same["results"]] == [False, False], same

    # A changed field and a dropped one would each change the Deployment; neither is written.
    other = run_module("dataflow_apply", {"definitions": [deployment(ns, {"disk": "hdd"})]}, way, check=True)
    assert other["changed"] is True
    assert other["results"][0]["object"]["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "hdd"}
    assert run_module("dataflow_apply", {"definitions": [deployment(ns, None)]}, way, check=True)["changed"] is True
    stored = get("deployment", "proc", ns)
    assert stored["metadata"]["resourceVersion"] == rv  # type: ignore[index]
    assert stored["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}  # type: ignore[index]


@pytest.mark.parametrize("way", WAYS)
def test_apply_failure_names_the_object(way: str, ns: str) -> None:
    bad = deployment(ns, None)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}  # does not match the selector
    result = run_module("dataflow_apply", {"definitions": [bad]}, way)
    assert result.get("failed") is True
    assert f"Deployment {ns}/proc" in result["msg"]
    assert "selector" in result["msg"]


@pytest.mark.parametrize("way", WAYS)
def test_reported_refusal_is_returned_with_secret_values_masked(way: str, ns: str) -> None:
    # The role's apply task is censored (no_log): a refusal comes back as `error`, for the status.
    password = "hunter2-\u00e9-s3cret"
    bad = deployment(ns, {"disk": "ssd"})
    # The API server echoes an invalid label value; here that value is the secret itself.
    bad["spec"]["template"]["spec"]["nodeSelector"] = {"disk": password}
    encoded = base64.b64encode(password.encode()).decode()
    result = run_module("dataflow_apply", {"definitions": [secret(ns, encoded), bad], "report_errors": True}, way)
    assert not result.get("failed"), result
    assert f"Deployment {ns}/proc" in result["error"] and "nodeSelector" in result["error"], result["error"]
    assert password not in result["error"] and encoded not in result["error"] and "***" in result["error"]
    assert [r["kind"] for r in result["results"]] == ["Secret"]  # what was applied before the refusal


@pytest.mark.parametrize("way", WAYS)
def test_delete_is_idempotent(way: str, ns: str) -> None:
    run_module("dataflow_apply", {"definitions": [secret(ns, "eA==")]}, way)
    gone = run_module("dataflow_apply", {"state": "absent", "definitions": [secret(ns, "eA==")]}, way)
    assert gone["changed"] is True
    assert get("secret", "creds", ns) is None
    assert run_module("dataflow_apply", {"state": "absent", "definitions": [secret(ns, "eA==")]}, way)["changed"] is False


@pytest.mark.parametrize("way", WAYS)
def test_status_module_patches_only_what_differs(way: str, ns: str) -> None:
    df = {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "metadata": {"name": "s", "namespace": ns},
          "spec": {"source": {"type": "kafka", "kafka": {"brokers": ["b:9092"], "topic": "t"}},
                   "sink": {"type": "kafka", "kafka": {"brokers": ["b:9092"], "topic": "u"}}}}
    kubectl("apply", "-f", "-", stdin=json.dumps(df))
    kubectl("patch", "dataflow", "s", "-n", ns, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"processedCount": 42}}))
    args = {"api_version": "dataflow.dataflow.io/v1", "kind": "DataFlow", "plural": "dataflows", "name": "s",
            "namespace": ns, "status": {"phase": "Running", "message": "Processor pod is running"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "ok"}]}
    first = run_module("dataflow_status", args, way)
    assert first["changed"] is True
    status = get("dataflow", "s", ns)["status"]  # type: ignore[index]
    assert status["phase"] == "Running" and status["processedCount"] == 42  # the counter is kept
    assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
    assert run_module("dataflow_status", args, way)["changed"] is False
    assert run_module("dataflow_status", {**args, "name": "absent"}, way)["changed"] is False


@pytest.mark.parametrize("way", WAYS)
def test_client_certificate_kubeconfig_with_embedded_data(way: str, ns: str, tmp_path: Path) -> None:
    """A kubeconfig with embedded CA, client certificate and key (no token): the module authenticates
    with the certificate and leaves no decoded key file behind."""
    require_tool("openssl")
    ca_dir = Path(os.environ["KUBECONFIG"]).parent / "conf/kube-apiserver"  # the API server's client CA
    key, csr, crt = tmp_path / "c.key", tmp_path / "c.csr", tmp_path / "c.crt"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=dataflow-module-test/O=system:masters"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"), "-CAkey",
                    str(ca_dir / "ca.key"), "-CAcreateserial", "-CAserial", str(tmp_path / "ca.srl"), "-days", "1",
                    "-out", str(crt)], check=True, capture_output=True)
    server = json.loads(kubectl("config", "view", "--minify", "-o", "json"))["clusters"][0]["cluster"]["server"]

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {"server": server,
                                                      "certificate-authority-data": b64(ca_dir / "ca.crt")}}],
              "users": [{"name": "u", "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_module("dataflow_apply", {"kubeconfig": str(kubeconfig), "definitions": [secret(ns, "eA==")]}, way,
                        env_extra={"TMPDIR": str(scratch)})
    assert result["changed"] is True, result
    assert get("secret", "creds", ns) is not None
    assert not list(scratch.glob("dataflow-kube-*")), "decoded client certificate/key left on disk"
