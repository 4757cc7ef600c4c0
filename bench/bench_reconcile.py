#!/usr/bin/env python3
"""Operator reconcile latency on the local control plane, printed as JSON.

1. latency: DataFlows applied one at a time; time from apply to the processor Deployment existing
   (p50/p95 over --single, default 50).
2. burst: --burst (default 100) DataFlows applied at once; time until all are Running, how many
   reconciles that took, and the CPU per reconcile (the runtime and its runner processes).
3. idle: with those DataFlows Running and nothing changing, --idle seconds (default 120): reconciles
   and CPU of the runtime and the secret watcher, as mCPU per DataFlow.
4. rotation: a Secret that --rotate (default 5) DataFlows reference changes; time until every one of
   their Deployments carries a new spec hash and its new pod is ready (p50/max over the DataFlows).
Baselines in the same run: a bare `kubectl apply` of a ConfigMap (the API round trip every apply
costs), and the floor: --floor (default 20) DataFlows reconciled by the same runtime running an
empty playbook, i.e. the CPU a reconcile costs before the role does anything. Needs `make env-up`;
starts its own operators.

Both phases observe through one `kubectl get --watch` each, not by polling: a kubectl process costs
~0.15 s of CPU, and polling every 0.1 s took a large share of the two cores the operator is
measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import percentile
from tests.e2e.kube import apply, kubectl
from tests.e2e.operator_process import OperatorProcess


def dataflow(name: str, ns: str) -> dict:
    sink = {"type": "postgresql", "postgresql": {"connectionString": "postgres://x/db", "table": "t"}}
    return {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "metadata": {"name": name, "namespace": ns},
            "spec": {"source": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": name}}, "sink": sink}}


def settle(op: OperatorProcess, at_least: int, timeout: float = 600) -> int:
    """Wait until `op` has run at least `at_least` reconciles and no more come for 3 s; their count."""
    deadline = time.monotonic() + timeout
    count, quiet_since = op.reconciles(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = op.reconciles()
        if now != count:
            count, quiet_since = now, time.monotonic()
        elif count >= at_least and time.monotonic() - quiet_since >= 3:
            break
    return count


def floor(n: int) -> dict:
    """CPU per reconcile of the same runtime on an empty playbook (n DataFlows of a namespace of its own)."""
    ns = f"bench-floor-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    work = Path(tempfile.mkdtemp())
    (work / "empty.yml").write_text("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    (work / "watches.yaml").write_text(yaml.safe_dump([{
        "version": "v1", "group": "dataflow.dataflow.io", "kind": "DataFlow",
        "playbook": str(work / "empty.yml"), "manageStatus": False}]))
    op = OperatorProcess(work / "operator.log", "dfop-bench", watches_file=work / "watches.yaml",
                         env={"WATCH_NAMESPACE": ns}).start()
    try:
        op.wait_leader()
        cpu, before = op.cpu_seconds(), op.reconciles()
        kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all([dataflow(f"f-{i}", ns) for i in range(n)]))
        runs = settle(op, before + n) - before
        return {"floor": n, "floor_reconciles": runs,
                "empty_playbook_cpu_per_reconcile_s": round((op.cpu_seconds() - cpu) / max(runs, 1), 2)}
    finally:
        op.stop()
        subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True)


class Watch:
    """`kubectl get KIND --watch` in one process: when each object was first seen, and its last phase."""

    def __init__(self, kind: str, ns: str) -> None:
        self.first_seen: dict[str, float] = {}
        self.phase: dict[str, str] = {}
        self.proc = subprocess.Popen(
            ["kubectl", "get", kind, "-n", ns, "--watch", "--no-headers",
             "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            name, _, phase = line.strip().partition(" ")
            self.first_seen.setdefault(name, time.monotonic())
            self.phase[name] = phase.strip()

    def seen(self, name: str, timeout: float) -> float:
        self.wait(lambda: name in self.first_seen, timeout)
        if name not in self.first_seen:
            raise SystemExit(f"{name} did not appear within {timeout:.0f} s")
        return self.first_seen[name]

    def wait(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def idle(op: OperatorProcess, dataflows: int, seconds: float) -> dict:
    cpu, runs = op.cpu_seconds(), op.reconciles()
    time.sleep(seconds)
    used = op.cpu_seconds() - cpu
    return {"idle_s": seconds, "idle_dataflows": dataflows, "idle_reconciles": op.reconciles() - runs,
            "idle_mcpu_per_dataflow": round(1000 * used / seconds / max(dataflows, 1), 3)}


def rotation(ns: str, n: int, timeout: float = 300) -> dict:
    """Seconds from a Secret change to each referencing DataFlow's processor rolled and ready again."""
    import base64

    def secret(value: str) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rotated", "namespace": ns},
                "data": {"dsn": base64.b64encode(value.encode()).decode()}}

    apply(secret("postgres://a@db/x"))
    names = [f"rot-{i}" for i in range(n)]
    for name in names:
        df = dataflow(name, ns)
        ref = {"name": "rotated", "key": "dsn"}
        df["spec"]["sink"]["postgresql"] = {"connectionStringSecretRef": ref, "table": "t"}
        apply(df)
    dataflows = Watch("dataflows", ns)
    dataflows.wait(lambda: all(dataflows.phase.get(x) == "Running" for x in names), timeout)
    dataflows.stop()
    hash_col = r"HASH:.spec.template.metadata.annotations.dataflow\.dataflow\.io/spec-hash"
    before = {}
    for name in names:
        before[name] = kubectl("get", "deployment", f"dataflow-{name}", "-n", ns, "--no-headers",
                               "-o", f"custom-columns={hash_col}").strip()
    done: dict[str, float] = {}
    proc = subprocess.Popen(
        ["kubectl", "get", "deployments", "-n", ns, "--watch", "--no-headers", "-o",
         f"custom-columns=NAME:.metadata.name,{hash_col},GEN:.metadata.generation,"
         "OBS:.status.observedGeneration,UPD:.status.updatedReplicas,READY:.status.readyReplicas"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            name, digest, gen, obs, upd, ready = (line.split() + [""] * 6)[:6]
            key = name.removeprefix("dataflow-")
            if key in before and digest != before[key] and gen == obs and upd == "1" and ready == "1":
                done.setdefault(key, time.monotonic())

    threading.Thread(target=read, daemon=True).start()
    time.sleep(1)
    t = time.monotonic()
    apply(secret("postgres://b@db/x"))
    deadline = t + timeout
    while len(done) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.terminate()
    took = sorted(done[x] - t for x in done)
    return {"rotate": n, "rotated": len(done),
            "secret_change_to_rolled_pod_p50_s": round(statistics.median(took), 2) if took else None,
            "secret_change_to_rolled_pod_max_s": round(took[-1], 2) if took else None}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=50)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--floor", type=int, default=20)
    ap.add_argument("--idle", type=float, default=120)
    ap.add_argument("--rotate", type=int, default=5)
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    crd = repo / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    subprocess.run(["kubectl", "create", "namespace", "dfop-bench"], capture_output=True)
    work = Path(tempfile.mkdtemp())
    op = OperatorProcess(work / "operator.log", "dfop-bench").start()
    result: dict = {"benchmark": "reconcile", "max_concurrent_reconciles": op.max_concurrent_reconciles,
                    "cores": os.cpu_count()}
    try:
        op.wait_leader()
        base = []
        for i in range(10):
            t = time.monotonic()
            apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"base-{i}", "namespace": ns}})
            base.append(time.monotonic() - t)
        result["baseline_kubectl_apply_p50_s"] = round(statistics.median(base), 3)

        lat = []
        deployments = Watch("deployments", ns)
        for i in range(args.single):
            name = f"one-{i}"
            t = time.monotonic()
            apply(dataflow(name, ns))
            lat.append(deployments.seen(f"dataflow-{name}", timeout=300) - t)
        deployments.stop()
        result.update(single=args.single, apply_to_deployment_p50_s=round(percentile(lat, 50), 2),
                      apply_to_deployment_p95_s=round(percentile(lat, 95), 2))
        print(json.dumps(result), file=sys.stderr, flush=True)

        dataflows = Watch("dataflows", ns)
        burst = [f"burst-{i}" for i in range(args.burst)]

        def running() -> int:
            return sum(dataflows.phase.get(name) == "Running" for name in burst)

        cpu, before = op.cpu_seconds(), settle(op, 0)
        t = time.monotonic()
        docs = yaml.safe_dump_all([dataflow(name, ns) for name in burst])
        kubectl("apply", "-n", ns, "-f", "-", stdin=docs, timeout=300)
        dataflows.wait(lambda: running() == args.burst, timeout=1800)
        result.update(burst=args.burst, burst_all_running_s=round(time.monotonic() - t, 1), burst_running=running())
        dataflows.stop()
        runs = settle(op, before) - before  # the last reconciles may still be finishing
        result.update(burst_reconciles=runs,
                      burst_cpu_per_reconcile_s=round((op.cpu_seconds() - cpu) / max(runs, 1), 2))
        print(json.dumps(result), file=sys.stderr, flush=True)
        if args.idle:
            result.update(idle(op, args.single + args.burst, args.idle))
            print(json.dumps(result), file=sys.stderr, flush=True)
        if args.rotate:
            result.update(rotation(ns, args.rotate))
        print(json.dumps(result), file=sys.stderr, flush=True)  # the cleanup below takes minutes
    finally:
        # Delete the DataFlows while the operator still runs: their finalizers need it.
        subprocess.run(["kubectl", "delete", "dataflows", "--all", "-n", ns, "--wait=true", "--timeout=600s"],
                       capture_output=True)
        op.stop()
        subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True)
    if args.floor:
        result.update(floor(args.floor))
        # The burst's reconciles at the empty-playbook cost, on every core: no role can finish sooner.
        result["burst_floor_s"] = round(result["burst_reconciles"] * result["empty_playbook_cpu_per_reconcile_s"]
                                        / (os.cpu_count() or 1), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
