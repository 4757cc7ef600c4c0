"""The processor as shipped: a wheel built from processor/, installed (not editable) into a fresh venv.

An editable install reads the source tree, so it hides package data missing from the wheel and
dependencies the tree's environment happens to have. Here nothing comes from the repository but the
wheel and the files it is run on: the venv is new, PYTHONPATH is cleared and the working directory
is elsewhere. Versions come from env/constraints.txt, like the image's. First the bare package
(`pip install ./processor` in the README), which must validate and preview; then its extras, with
which every connector module must import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "env/constraints.txt"
SAMPLES = sorted((REPO / "config/samples").glob("dataflow_v1_*.yaml"))
CONNECTORS = sorted(p.stem for p in (REPO / "processor/src/dataflow_processor/connectors").glob("*.py")
                    if p.stem != "__init__")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(cmd: list[str], cwd: Path, stdin: str | None = None, timeout: int = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}: rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of what the image copies: setuptools leaves build/ and *.egg-info in the source tree,
    # and files left there by an earlier build would end up in this wheel.
    src = out / "processor"
    shutil.copytree(REPO / "processor/src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / "processor" / name, src / name)
    # The build backend (setuptools) is the env's pinned one: no build isolation, nothing downloaded.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)], cwd=out)
    (whl,) = out.glob("dataflow_processor-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(root / "v")], cwd=root)
    run([str(root / "v/bin/pip"), "install", "-c", str(LOCK), str(wheel)], cwd=root)
    return root / "v"


def test_wheel_carries_its_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("crd.yaml", "policy.yaml"):
        assert f"dataflow_processor/admission/data/{data}" in names
    assert "dataflow_processor/py.typed" in names


def test_bare_install_validates_every_sample(venv: Path) -> None:
    out = run([str(venv / "bin/dataflow-processor"), "validate", *map(str, SAMPLES)], cwd=venv.parent)
    assert out.splitlines() == [f"{s}: valid" for s in SAMPLES], out


def test_bare_install_previews_the_example(venv: Path) -> None:
    records = (REPO / "processor/examples/records.jsonl").read_text()
    out = run([str(venv / "bin/dataflow-processor"), "preview", "--spec-path",
               str(REPO / "processor/examples/kafka-to-postgres.yaml")], cwd=venv.parent, stdin=records)
    assert {json.loads(line)["sink"] for line in out.splitlines()} == {"sink", "errors"}, out


def test_with_extras_every_connector_imports(venv: Path, wheel: Path) -> None:
    run([str(venv / "bin/pip"), "install", "-c", str(LOCK), f"{wheel}[connectors,kubernetes]"], cwd=venv.parent)
    code = ("import importlib, dataflow_processor\n"
            f"assert {str(REPO)!r} not in dataflow_processor.__file__, dataflow_processor.__file__\n"
            f"for m in {CONNECTORS!r}: importlib.import_module('dataflow_processor.connectors.' + m)\n"
            "print('ok')")
    assert run([str(venv / "bin/python"), "-c", code], cwd=venv.parent).strip() == "ok"
    run([str(venv / "bin/pip"), "check"], cwd=venv.parent)
