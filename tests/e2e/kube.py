"""Small helpers over kubectl for the end-to-end tests (real API server, real operator)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def apply(manifest: dict[str, Any] | str, namespace: str | None = None) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", stdin=text)


def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    scope = ["-n", namespace] if namespace else []
    out = subprocess.run(["kubectl", "get", kind, name, *scope, "-o", "json"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        if "NotFound" in out.stderr or "not found" in out.stderr:
            return None
        raise AssertionError(out.stderr)
    return json.loads(out.stdout)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90, interval: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
