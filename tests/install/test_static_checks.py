"""Checks users and CI make anyway: hadolint, yamllint, ansible-lint, ruff and mypy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_hadolint() -> None:
    require_tool("hadolint")
    proc = run("hadolint", "Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint() -> None:
    require_tool("yamllint")
    proc = run("yamllint", "-s", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint() -> None:
    require_tool("ansible-lint")
    proc = run("ansible-lint", "--offline", "roles/dataflow", "playbooks")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("paths", [["tests", "scripts", "roles"], ["processor"]], ids=["repo", "processor"])
def test_ruff(paths: list[str]) -> None:
    require_tool("ruff")
    proc = run("ruff", "check", *paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The role's action plugins share their modules' file names: mypy checks them in a run of their own.
@pytest.mark.parametrize(("cwd", "paths"), [
    (".", ["tests", "bench", "scripts", "roles", "--exclude", "roles/dataflow/action_plugins/"]),
    (".", ["roles/dataflow/action_plugins"]),
    ("processor", ["src"]),
], ids=["repo", "role-actions", "processor"])
def test_mypy(cwd: str, paths: list[str]) -> None:
    require_tool("mypy")
    proc = subprocess.run(["mypy", *paths], cwd=REPO / cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
