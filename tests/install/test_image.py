"""The operator image as built by `make image`: what it runs, as whom, with what, on a read-only root.

Built (or found current) by scripts/build_image.sh, then run with podman the way a kubelet runs it:
root filesystem read-only, only the paths the image declares writable (label io.dataflow.writable-paths)
on tmpfs, no network. Podman needs runc and explicit ulimits on this machine (docs/image.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool
from tests.unit.test_constraints import canonical, pins

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("DATAFLOW_TEST_IMAGE", "localhost/dataflow-operator:0.1.0")
RUN = ["podman", "run", "--rm", "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def versions_env() -> dict[str, str]:
    text = (REPO / "env/versions.env").read_text()
    return dict(re.findall(r"^([A-Z0-9_]+)=(\S+)", text, re.M))


@pytest.fixture(scope="module")
def image() -> dict:
    require_tool("podman")
    proc = subprocess.run([str(REPO / "scripts/build_image.sh"), IMAGE], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = subprocess.run(["podman", "image", "inspect", IMAGE], capture_output=True, text=True, check=True).stdout
    config: dict = json.loads(out)[0]["Config"]
    return config


def sandbox(config: dict) -> list[str]:
    """`podman run` options of a hardened pod: read-only root, tmpfs only where the image says."""
    writable = config["Labels"]["io.dataflow.writable-paths"].split(",")
    opts = [*RUN, "--network", "none", "--read-only", "--read-only-tmpfs=false"]
    for path in writable:
        opts += ["--tmpfs", f"{path}:rw,mode=1777"]
    return opts


def run_in(config: dict, *cmd: str, entrypoint: str | None = None, mounts: tuple[str, ...] = (),
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    args = sandbox(config)
    for m in mounts:
        args += ["-v", m]
    if entrypoint is not None:
        args += ["--entrypoint", entrypoint]
    if stdin is not None:
        args.append("-i")
    return subprocess.run([*args, IMAGE, *cmd], input=stdin, capture_output=True, text=True, timeout=300)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_second_build_of_the_same_tree_builds_nothing(image: dict) -> None:
    before = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                            capture_output=True, text=True, check=True).stdout
    proc = subprocess.run([str(REPO / "scripts/build_image.sh"), IMAGE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"image {IMAGE} is current" in proc.stderr and "STEP" not in proc.stderr, proc.stderr[-3000:]
    after = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                           capture_output=True, text=True, check=True).stdout
    assert after == before


def test_runs_as_a_non_root_user(image: dict) -> None:
    assert image["User"] == "1001"
    assert ok(run_in(image, "-c", "id -u; id -g", entrypoint="/bin/sh")).split() == ["1001", "0"]


@pytest.fixture
def operator_container(image: dict, tmp_path: Path) -> Iterator[str]:
    """The image's own entrypoint, pointed at an API server that is not there: it keeps retrying."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "none", "user": {"token": "none"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}]}))
    kubeconfig.chmod(0o644)
    args = [a for a in sandbox(image) if a != "--rm"]
    cid = subprocess.run([*args, "-d", "-v", f"{kubeconfig}:/etc/dataflow-test/kubeconfig:ro",
                          "-e", "KUBECONFIG=/etc/dataflow-test/kubeconfig", IMAGE],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield cid
    finally:
        subprocess.run(["podman", "rm", "-f", cid], capture_output=True, check=False)


def test_pid_1_is_the_init_and_the_operator_its_child(operator_container: str) -> None:
    assert os.path.basename(json.loads(subprocess.run(
        ["podman", "image", "inspect", IMAGE], capture_output=True, text=True, check=True).stdout)[0]
        ["Config"]["Entrypoint"][0]) == "tini"
    script = ("for p in /proc/[0-9]*; do [ -r $p/cmdline ] || continue; "
              "printf '%s %s ' ${p#/proc/} $(awk '/^PPid:/{print $2}' $p/status); "
              "tr '\\0' ' ' <$p/cmdline; echo; done")
    procs: dict[int, tuple[int, str]] = {}
    for _ in range(60):
        state = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", operator_container],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert state == "running", subprocess.run(["podman", "logs", operator_container],
                                                  capture_output=True, text=True).stderr[-3000:]
        out = subprocess.run(["podman", "exec", operator_container, "sh", "-c", script],
                             capture_output=True, text=True).stdout
        procs = {int(pid): (int(ppid), cmd.strip()) for pid, ppid, cmd in
                 (line.split(" ", 2) for line in out.splitlines() if line.count(" ") >= 2)}
        if any("ansible-operator run" in cmd and ppid == 1 for ppid, cmd in procs.values()):
            break
        time.sleep(0.5)
    assert procs[1][1].startswith("/usr/bin/tini -- "), procs
    assert any(ppid == 1 and cmd.startswith("/usr/local/bin/ansible-operator run") for ppid, cmd in procs.values()), procs


def test_ansible_operator_and_processor_on_path(image: dict) -> None:
    out = ok(run_in(image, "version", entrypoint="ansible-operator"))
    assert f'ansible-operator version: "v{versions_env()["ANSIBLE_OPERATOR_VERSION"]}"' in out
    assert "validate" in ok(run_in(image, "--help", entrypoint="dataflow-processor"))


def test_connector_clients_and_every_connector_import(image: dict) -> None:
    connectors = sorted(p.stem for p in (REPO / "processor/src/dataflow_processor/connectors").glob("*.py")
                        if p.stem != "__init__")
    code = ("import aiokafka, asyncpg, trino, pyiceberg, pyarrow, fastavro, kubernetes, jsonschema, requests\n"
            "import importlib\n"
            f"for m in {connectors!r}: importlib.import_module('dataflow_processor.connectors.' + m)\n"
            "print('ok')")
    assert ok(run_in(image, "-c", code, entrypoint="python")).strip() == "ok"


def test_python_packages_and_collections_are_the_pins(image: dict) -> None:
    lock = pins(REPO / "env/constraints.txt")
    listed = json.loads(ok(run_in(image, "-m", "pip", "list", "--format", "json", entrypoint="python")))
    installed = {canonical(d["name"]): d["version"] for d in listed}
    assert installed["ansible-core"] == lock["ansible-core"]
    drift = {n: (v, lock[n]) for n, v in installed.items() if n in lock and lock[n] != v}
    unlocked = sorted(n for n in installed if n not in lock and n != "dataflow-processor")
    assert not drift and not unlocked, f"drift from env/constraints.txt: {drift}; not locked: {unlocked}"

    out = ok(run_in(image, "collection", "list", "--format", "json", entrypoint="ansible-galaxy"))
    in_image = {name: meta["version"] for path in json.loads(out).values() for name, meta in path.items()}
    wanted = {c["name"]: str(c["version"]) for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert in_image == wanted
    # ... and the same kubernetes.core as the environment's venv, where the tests run the role.
    spec = find_spec("ansible_collections")
    assert spec is not None and spec.submodule_search_locations, "the env venv has no ansible_collections"
    manifest = Path(next(iter(spec.submodule_search_locations))) / "kubernetes/core/MANIFEST.json"
    assert json.loads(manifest.read_text())["collection_info"]["version"] == in_image["kubernetes.core"]


def test_processor_and_ansible_work_on_a_read_only_root(image: dict) -> None:
    mounts = (f"{REPO / 'config/samples'}:/samples:ro", f"{REPO / 'processor/examples'}:/examples:ro")
    samples = sorted(p.name for p in (REPO / "config/samples").glob("dataflow_v1_*.yaml"))
    ok(run_in(image, "validate", *(f"/samples/{s}" for s in samples), entrypoint="dataflow-processor", mounts=mounts))
    records = (REPO / "processor/examples/records.jsonl").read_text()
    out = ok(run_in(image, "preview", "--spec-path", "/examples/kafka-to-postgres.yaml",
                    entrypoint="dataflow-processor", mounts=mounts, stdin=records))
    assert {json.loads(line)["sink"] for line in out.splitlines()} == {"sink", "errors"}, out
    # Ansible writes its temp dirs under HOME/ANSIBLE_LOCAL_TEMP, which the image puts on /tmp.
    out = ok(run_in(image, "-i", "localhost,", "-c", "local", "localhost", "-m", "ansible.builtin.ping",
                    entrypoint="ansible"))
    assert "SUCCESS" in out
    # The runtime runs playbooks/dataflow.yml from the working directory: its role must resolve there,
    # and so must the secret watcher's sibling files.
    for playbook in ("playbooks/dataflow.yml", "playbooks/admission-policy.yml"):
        ok(run_in(image, "--syntax-check", "-i", "localhost,", playbook, entrypoint="ansible-playbook"))
    out = ok(run_in(image, "roles/dataflow/files/secret_watch.py", "--help", entrypoint="python3"))
    assert "--namespace" in out
    # And nothing else is writable.
    proc = run_in(image, "-c", "touch /opt/dataflow/operator/x", entrypoint="/bin/sh")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr
