"""Smoke test of the operator tooling: the Go binaries built by the operator-tools component and the
Ansible side (runner, its HTTP event plugin, kubernetes.core, molecule) from requirements-tools.txt."""

from __future__ import annotations

import importlib
import re
import subprocess
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[2]


def pinned(name: str, path: str = "env/versions.env") -> str:
    text = (REPO / path).read_text()
    m = re.search(rf"^{re.escape(name)}(?:==|=)(\S+)$", text, re.M)
    assert m, f"{name} not pinned in {path}"
    return m.group(1)


def run(*args: str, cwd: Path | None = None) -> str:
    tool = require_tool(args[0])
    out = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def test_ansible_operator_version() -> None:
    out = run("ansible-operator", "version")
    assert f'ansible-operator version: "v{pinned("ANSIBLE_OPERATOR_VERSION")}"' in out


def test_operator_sdk_version() -> None:
    out = run("operator-sdk", "version")
    assert f'operator-sdk version: "v{pinned("OPERATOR_SDK_VERSION")}"' in out


def test_helm_version_and_kubernetes_capabilities(tmp_path: Path) -> None:
    out = run("helm", "version", "--short")
    assert out.startswith(f"v{pinned('HELM_VERSION')}")
    # Built with the Kubernetes version ldflags: a chart requiring >= 1.30 templates without --kube-version.
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text('apiVersion: v2\nname: c\nversion: 0.1.0\nkubeVersion: ">=1.30.0-0"\n')
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        "data: {kube: '{{ .Capabilities.KubeVersion.Version }}'}\n"
    )
    rendered = run("helm", "template", str(chart))
    minor = pinned("K8S_VERSION").split(".")[1]
    assert f"kube: 'v1.{minor}.0'" in rendered


def test_ansible_runner_and_http_event_plugin() -> None:
    assert run("ansible-runner", "--version").strip() == pinned("ansible-runner", "env/requirements-tools.txt")
    # ansible-operator gets its events through this plugin (entry point ansible_runner.plugins: http).
    importlib.import_module("ansible_runner_http")
    plugins = {ep.name for ep in entry_points(group="ansible_runner.plugins")}
    assert "http" in plugins
    importlib.import_module("requests_unixsocket")


def test_ansible_core_and_kubernetes_collection() -> None:
    out = run("ansible-playbook", "--version")
    assert f"[core {pinned('ansible-core', 'env/requirements-tools.txt')}]" in out
    listed = run("ansible-galaxy", "collection", "list", "kubernetes.core")
    assert re.search(r"^kubernetes\.core\s+\d+\.\d+\.\d+", listed, re.M), listed
    assert version("kubernetes") == pinned("kubernetes", "env/requirements-processor.txt")


def test_molecule_version() -> None:
    out = run("molecule", "--version")
    assert f"molecule {pinned('molecule', 'env/requirements-tools.txt')}" in re.sub(r"\x1b\[[0-9;]*m", "", out)


def test_prometheus_and_promtool_version() -> None:
    """The monitoring tests' Prometheus and promtool (env/components/07-prometheus.sh)."""
    want = pinned("PROMETHEUS_VERSION")
    assert f"prometheus, version {want}" in run("prometheus", "--version")
    assert f"promtool, version {want}" in run("promtool", "--version")
