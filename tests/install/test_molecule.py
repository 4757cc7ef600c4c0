"""`molecule test -s local`: the role converged against the local control plane, twice without change."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_molecule_local_scenario(kubeconfig: str) -> None:
    require_tool("molecule")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    proc = subprocess.run(["molecule", "test", "-s", "local"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-4000:]
    for step in ("prepare", "converge", "idempotence", "verify", "cleanup"):
        assert re.search(rf"{step}: Executed: Successful", out), f"{step} did not succeed:\n{out[-4000:]}"
