"""Reliability harness (issue #9): the real ``dataflow-processor`` CLI under faults, Kafka → PostgreSQL.

Pieces shared by ``test_kill_kafka_pg.py`` (kill -9, broker and database restarts, a temporary CHECK
constraint, bounded memory while the database is down) and ``test_poison.py`` (poison records):

* :class:`Supervisor` — the processor as a subprocess (``Processor`` of the restart test) that is
  started again whenever it is found dead, as Kubernetes would (counted: ``crash_restarts``);
* :func:`restart_server` — ``env/envctl down X && env/envctl up X`` (both keep their data);
* :func:`rss_kib` — a process's resident memory from ``/proc/<pid>/status`` (no psutil);
* :func:`classify` — every produced id is *written* (main or route sink), *errors* (an envelope in
  the errors table), *both*, or *lost*; duplicates per sink.

Scale: ``RELIABILITY_N`` (default 20,000 — the CI run) sets how many ids the kill test produces; the
fault schedule stretches with the production time. ``RELIABILITY_SEED`` fixes the random moments.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.reliability.test_restart_kafka_pg import Processor

REPO = Path(__file__).resolve().parents[2]
ENVCTL = REPO / "env" / "envctl"


def scale() -> int:
    return int(os.environ.get("RELIABILITY_N", "20000"))


def seed() -> int:
    return int(os.environ.get("RELIABILITY_SEED", str(int(time.time()))))


# ----------------------------------------------------------------------------- servers


def restart_server(component: str, down_seconds: float = 0.0) -> float:
    """Stop a local server, keep it down ``down_seconds``, start it again; return the wall time."""
    started = time.monotonic()
    for args in (["down", component], ["up", component]):
        proc = subprocess.run([str(ENVCTL), *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"envctl {' '.join(args)}: {proc.stdout}{proc.stderr}"
        if args[0] == "down" and down_seconds:
            time.sleep(down_seconds)
    return time.monotonic() - started


async def restart_server_async(component: str, down_seconds: float = 0.0) -> float:
    return await asyncio.to_thread(restart_server, component, down_seconds)


async def pg_execute(dsn: str, sql: str, timeout: float = 60.0) -> None:
    """Run one statement on a fresh connection, retrying while the server is (re)starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                await conn.execute(sql)
                return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def pg_fetch(dsn: str, sql: str, timeout: float = 60.0) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                return list(await conn.fetch(sql))
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# ----------------------------------------------------------------------------- processor


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RepoProcessor(Processor):
    """The CLI run on this checkout's processor source (``PYTHONPATH``), whatever the shared venv's
    editable install points at (another checkout may have re-installed it)."""

    def start(self) -> None:
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "processor" / "src"), saved) if p)
        try:
            super().start()
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved


class Supervisor:
    """Keeps one processor running: restarts it when it died on its own; counts kills and crashes."""

    def __init__(self, spec: dict[str, Any], workdir: Path, name: str) -> None:
        self.processor = RepoProcessor(spec, workdir, name)
        self.kills = 0
        self.crash_restarts = 0
        self.crash_codes: list[int] = []
        self.peak_rss_kib = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.processor.start()
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            proc = self.processor.proc
            if proc is not None:
                if proc.poll() is not None:
                    self.crash_codes.append(proc.returncode)
                    self.crash_restarts += 1
                    await asyncio.sleep(1.0)  # like a pod restart's back-off, short
                    self.processor.start()
                else:
                    self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(proc.pid))
            await asyncio.sleep(0.2)

    def kill9(self) -> None:
        """SIGKILL the running processor and start it again at once."""
        proc = self.processor.proc
        assert proc is not None
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            self.kills += 1
        self.processor.start()

    async def stop(self) -> int:
        """SIGTERM (graceful stop); return its exit code."""
        if self._task is not None:
            self._task.cancel()
        proc = self.processor.proc
        assert proc is not None
        if proc.poll() is not None:
            return proc.returncode
        return await asyncio.to_thread(self.processor.stop, signal.SIGTERM, 90)

    def kill(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.processor.kill()

    def logs(self) -> str:
        return self.processor.logs()


# ----------------------------------------------------------------------------- classification

ID_IN_TEXT = re.compile(rb'"id"\s*:\s*(\d+)')


def envelope_id(envelope: dict[str, Any]) -> int | None:
    """The produced id an errors envelope is about (from the record, or from the raw text)."""
    original = envelope.get("original_message")
    if isinstance(original, dict):
        if isinstance(original.get("id"), int):
            return int(original["id"])
        raw = original.get("original_data")
        if isinstance(raw, str):
            match = ID_IN_TEXT.search(raw[:200].encode("utf-8", "replace"))
            if match:
                return int(match.group(1))
    return None


def envelope_has_context(envelope: dict[str, Any]) -> bool:
    """Error text, stage and source position (partition, offset) are all there."""
    error = envelope.get("error") or {}
    position = error.get("position") or {}
    return (
        bool(error.get("message"))
        and bool(error.get("stage"))
        and isinstance(position.get("partition"), int)
        and isinstance(position.get("offset"), int)
    )


@dataclass
class Classification:
    produced: int
    written: set[int] = field(default_factory=set)
    in_errors: set[int] = field(default_factory=set)
    expected_errors: set[int] = field(default_factory=set)
    duplicates: dict[str, int] = field(default_factory=dict)
    envelopes_without_context: int = 0

    @property
    def lost(self) -> set[int]:
        return set(range(self.produced)) - self.written - self.in_errors

    @property
    def missing_expected_errors(self) -> set[int]:
        return self.expected_errors - self.in_errors

    @property
    def unexpected_errors(self) -> set[int]:
        return self.in_errors - self.expected_errors

    def table(self) -> dict[str, Any]:
        everything = set(range(self.produced))
        return {
            "produced": self.produced,
            "written_only": len((self.written - self.in_errors) & everything),
            "errors_only": len((self.in_errors - self.written) & everything),
            "written_and_errors": len(self.written & self.in_errors),
            "lost": len(self.lost),
            "expected_in_errors": len(self.expected_errors),
            "expected_in_errors_missing": len(self.missing_expected_errors),
            "unexpected_in_errors": len(self.unexpected_errors),
            "envelopes_without_context": self.envelopes_without_context,
            "duplicates": self.duplicates,
        }

    def print(self, title: str, extra: dict[str, Any] | None = None) -> None:
        table = self.table()
        width = max(len(k) for k in table)
        print(f"\n== {title}")
        for key, value in table.items():
            print(f"  {key:<{width}}  {value}")
        print(json.dumps({"case": title, **table, **(extra or {})}))


def count_children(rows: list[asyncpg.Record], children: int) -> tuple[set[int], int]:
    """Ids with all their ``children`` rows present, and how many rows are duplicates."""
    per_child = Counter((r["id"], r["sub"]) for r in rows)
    duplicates = sum(n - 1 for n in per_child.values())
    per_id = Counter(i for i, _ in per_child)
    return {i for i, n in per_id.items() if n >= children}, duplicates
