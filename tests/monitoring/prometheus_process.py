"""A real Prometheus for one test: Debian's binary on a free 127.0.0.1 port, its own TSDB in the test's
directory, stopped (by its pid) when the test ends; and its HTTP query API."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_tool

Labels = frozenset[tuple[str, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        body: bytes = r.read()
        return body


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str, at: float) -> dict[Labels, float]:
        """An instant query at `at`: each series' labels → value."""
        q = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        body = json.loads(get(f"{self.url}/api/v1/query?{q}"))
        assert body["status"] == "success", body
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in body["data"]["result"]}


@contextlib.contextmanager
def running_prometheus(workdir: Path, scrape_configs: list[dict[str, Any]]) -> Iterator[Prometheus]:
    """Scrape every second (rates over a few tens of seconds are then exact to a few per cent)."""
    binary = require_tool("prometheus")
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"}, "scrape_configs": scrape_configs}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    logfile = workdir / "prometheus.log"
    log = open(logfile, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"{url}/-/ready")
                break
            except OSError:
                assert proc.poll() is None, logfile.read_text()[-3000:]
                assert time.monotonic() < deadline, "Prometheus not ready in 30 s"
                time.sleep(0.2)
        yield Prometheus(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
