#!/usr/bin/env python3
"""What the ValidatingAdmissionPolicy costs a `kubectl apply` of a valid DataFlow, printed as JSON.

Two configurations on the same API server, in alternating blocks (A B A B …) so that drift in the
machine's load falls on both alike:

* ``crd_only`` — the CRD's typed schema alone (policy and binding deleted);
* ``with_policy`` — the CRD plus the policy `dataflow.dataflow.io` and its binding (the default install).

Each block creates ``--per-block`` DataFlows through the API (the server-side cost, measured by the
client round trip of a create) and times ``--kubectl`` real ``kubectl apply`` runs (what a user
waits for, process start included). The valid spec is the largest shipped sample (a router with
route sinks: the most rules evaluated). (The API server's policy-check histogram is not used: this
version records only denials in it.)
Needs `make env-up`; no operator runs, so the objects carry no finalizer and are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timing import percentile  # noqa: E402
from tests.conftest import install_crd  # noqa: E402

POLICY = REPO / "config/policy/validating-admission-policy.yaml"
SAMPLE = REPO / "config/samples/dataflow_v1_postgres-to-kafka-router.yaml"
# Valid for the CRD schema, denied by the policy alone: tells whether the policy is in force.
PROBE_SPEC = {
    "source": {"type": "kafka", "kafka": {"brokers": ["b:9092"], "topic": "t"}},
    "sink": {"type": "postgresql", "postgresql": {"connectionString": "postgres://x/db"}},
}
GROUP, VERSION, PLURAL = "dataflow.dataflow.io", "v1", "dataflows"


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "mean_ms": round(statistics.fmean(ms), 2)}


class Bench:
    def __init__(self, namespace: str) -> None:
        config.load_kube_config()
        self.api = client.CustomObjectsApi()
        self.ns = namespace
        self.template: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
        self.seq = 0

    def manifest(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        self.seq += 1
        obj = {**self.template, "metadata": {"name": f"adm-{self.seq}", "namespace": self.ns}}
        if spec is not None:
            obj["spec"] = spec
        return obj

    def policy_in_force(self) -> bool:
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, self.manifest(PROBE_SPEC),
                                                     dry_run="All")
        except client.ApiException as exc:
            if exc.status == 422 and "ValidatingAdmissionPolicy" in str(exc.body):
                return True
            raise
        return False

    def set_policy(self, on: bool) -> None:
        if on:
            kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY))
        else:
            kubectl("delete", "--ignore-not-found", "-f", str(POLICY))
        # The server loads policies asynchronously; wait until the probe says the change is live.
        deadline = time.monotonic() + 120
        while self.policy_in_force() != on:
            if time.monotonic() > deadline:
                raise SystemExit(f"policy {'on' if on else 'off'} never took effect")
            time.sleep(0.5)

    def api_creates(self, count: int) -> list[float]:
        times = []
        for _ in range(count):
            body = self.manifest()
            start = time.perf_counter()
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
            times.append(time.perf_counter() - start)
        return times

    def kubectl_applies(self, count: int, workdir: Path) -> list[float]:
        times = []
        for _ in range(count):
            path = workdir / "df.yaml"
            path.write_text(yaml.safe_dump(self.manifest()))
            start = time.perf_counter()
            kubectl("apply", "-f", str(path))
            times.append(time.perf_counter() - start)
        return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=4, help="blocks per configuration (alternating)")
    ap.add_argument("--per-block", type=int, default=100, help="API creates per block")
    ap.add_argument("--kubectl", type=int, default=10, help="kubectl apply runs per block")
    args = ap.parse_args()

    install_crd(timeout=60)
    ns = f"bench-adm-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    bench = Bench(ns)
    workdir = Path(tempfile.mkdtemp())
    api: dict[str, list[float]] = {"crd_only": [], "with_policy": []}
    cli: dict[str, list[float]] = {"crd_only": [], "with_policy": []}
    try:
        for _ in range(args.blocks):
            for name, on in (("crd_only", False), ("with_policy", True)):
                bench.set_policy(on)
                bench.api_creates(5)  # warm the path (informers, connection) before timing
                api[name] += bench.api_creates(args.per_block)
                cli[name] += bench.kubectl_applies(args.kubectl, workdir)
    finally:
        bench.set_policy(True)  # leave the default install as it was
        kubectl("delete", "namespace", ns, "--wait=false", check=False)

    result: dict[str, Any] = {
        "benchmark": "admission",
        "spec": SAMPLE.name,
        "api_create": {name: summary(v) for name, v in api.items()},
        "kubectl_apply": {name: summary(v) for name, v in cli.items()},
    }
    for key in ("api_create", "kubectl_apply"):
        base, pol = result[key]["crd_only"], result[key]["with_policy"]
        result[key]["policy_overhead_p50_ms"] = round(pol["p50_ms"] - base["p50_ms"], 2)
        result[key]["ratio_p50"] = round(pol["p50_ms"] / base["p50_ms"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
