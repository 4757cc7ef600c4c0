"""The README's two commands, from a fresh clone: `make demo` really moves data; `make check` is
what CI runs (CI runs it for real; here its recipe is checked, running it would recurse)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README starts with a sh block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def wait_port_free(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(1)


def test_readme_starts_with_the_two_commands() -> None:
    assert readme_commands() == ["make demo", "make check"]
    ci = (REPO / ".ci/run").read_text()
    assert "make check" in ci


def test_make_check_brings_the_environment_up_then_runs_the_suite() -> None:
    out = subprocess.run(["make", "-n", "check"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "env/envctl up" in out and "make test" in out, out
    assert out.index("env/envctl up") < out.index("make test"), out


def test_make_demo_from_a_fresh_clone(tmp_path: Path, kubeconfig: str) -> None:
    require_tool("ansible-operator")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    wait_port_free(5050)  # one operator per host: a previous suite's must be gone
    try:
        proc = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, DEMO_RECORDS="500"))
    finally:
        # The demo installs the processor (editable) from the clone; point the venv back here.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "-e", str(REPO / "processor")], check=True, capture_output=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"done: \d+ rows arrived; DataFlow orders is Running", out), out[-4000:]
    wait_port_free(5050)
