"""Run the real `ansible-operator` binary on this repository's watches.yaml as a local process.

This is how the operator runs in these tests and in the README's demo: the same watches, roles and
playbooks as the image, the same flags as the chart's Deployment (leader election with the ID
`dataflow-operator.dataflow.io`, explicit max concurrent reconciles).

One operator per network namespace: the runtime always listens on 127.0.0.1:5050 (its event API)
and always hands ansible-runner a kubeconfig for its proxy at localhost:8888, whatever
`--proxy-port` says (ansible-operator-plugins v1.42.2, run/cmd.go and controller/reconcile.go).
Metrics and health ports are picked free.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEADER_ELECTION_ID = "dataflow-operator.dataflow.io"
ACQUIRED = "successfully acquired lease"  # the runtime's log line once it leads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime (fields 14-17 of proc(5)), in clock ticks
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass
class OperatorProcess:
    log_path: Path
    namespace: str  # leader-election namespace (the operator's own namespace in a cluster)
    env: dict[str, str] = field(default_factory=dict)
    max_concurrent_reconciles: int = 4
    # When set (install tests), these replace the default runtime flags below, as an installed
    # Deployment's args would; listen addresses are still picked here.
    extra_args: list[str] | None = None
    # A command prefix, e.g. `ip netns exec <ns>` to run a second operator on a host of its own.
    prefix: list[str] = field(default_factory=list)
    watches_file: Path = REPO / "watches.yaml"
    # The secret watcher the operator pod runs beside the runtime (roles/dataflow/files/secret_watch.py).
    secret_watch: bool = True
    proc: subprocess.Popen[bytes] | None = None
    watcher: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    metrics_port: int = 0

    def start(self) -> OperatorProcess:
        self.health_port = free_port()
        self.metrics_port = free_port()
        env = dict(os.environ)
        env.update({
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_LOCAL_TEMP": str(self.log_path.parent / "ansible-tmp"),
            "PROCESSOR_IMAGE": env.get("PROCESSOR_IMAGE", "localhost/dataflow-operator:test"),
            **self.env,
        })
        runtime_flags = self.extra_args if self.extra_args is not None else [
            "--leader-elect", "--leader-election-id", LEADER_ELECTION_ID,
            "--max-concurrent-reconciles", str(self.max_concurrent_reconciles), "--ansible-verbosity", "0",
        ]
        args = [
            *self.prefix,
            "ansible-operator", "run",
            "--watches-file", str(self.watches_file),
            *runtime_flags,
            "--leader-election-namespace", self.namespace,
            "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}",
            "--health-probe-bind-address", f"127.0.0.1:{self.health_port}",
            "--ansible-log-events", "Tasks",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if self.secret_watch:
            watch_log = self.log_path.with_suffix(".secret-watch.log").open("ab")
            self.watcher = subprocess.Popen(
                [*self.prefix, sys.executable, str(REPO / "roles/dataflow/files/secret_watch.py")],
                cwd=REPO, env=env, stdout=watch_log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"ansible-operator exited ({self.proc.returncode}); see {self.log_path}")
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            if self.prefix:  # the probe must run where the operator listens
                if subprocess.run([*self.prefix, "curl", "-fsS", "-o", "/dev/null", url],
                                  capture_output=True, timeout=10).returncode == 0:
                    return
            else:
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.5)
        raise AssertionError(f"ansible-operator not healthy after {timeout}s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU used so far by the runtime and its finished children (ansible-runner, ansible-playbook, …)
        and by the secret watcher."""
        assert self.proc is not None
        return sum(_cpu(p.pid) for p in (self.proc, self.watcher) if p is not None and p.poll() is None)

    def reconciles(self, controller: str = "dataflow-v1-controller") -> int:
        """Reconciles run so far by `controller`, from the runtime's own Prometheus metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("controller_runtime_reconcile_total{") and f'controller="{controller}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_leader(self, timeout: float = 90) -> None:
        """Wait until this operator holds the lease. A lease left by an operator that was just stopped
        is taken over only when it expires (about 15 s): time a benchmark must not count."""
        deadline = time.monotonic() + timeout
        while ACQUIRED not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"ansible-operator did not acquire the lease in {timeout}s; see {self.log_path}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.watcher and self.watcher.poll() is None:
            os.killpg(self.watcher.pid, signal.SIGTERM)
            self.watcher.wait(timeout=30)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
