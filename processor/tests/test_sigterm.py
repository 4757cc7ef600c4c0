"""SIGTERM on a real processor process: stop reading, flush in-flight records, commit, exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.subprocess
def test_sigterm_flushes_everything_read_and_commits(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE)])}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "sigterm_app.py"), str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.3)  # the sink's 0.5 s flush interval leaves records in flight
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    written = [json.loads(line)["id"] for line in (tmp_path / "written.jsonl").read_text().splitlines()]
    read = int((tmp_path / "read.txt").read_text())
    assert read >= 50
    assert sorted(written) == list(range(read))  # everything read was written, once
    committed = json.loads((tmp_path / "committed.json").read_text())
    # round-robin over 2 partitions: partition p holds ids p, p+2, …
    assert committed == {"0": (read + 1) // 2, "1": read // 2}
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(entry["msg"].startswith("stop requested") for entry in logs)
    assert all(entry["dataflow_name"] == "sigterm" and entry["dataflow_namespace"] == "test" for entry in logs)
