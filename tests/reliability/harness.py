"""Reliability harness (issue #9): the real ``dataflow-processor`` CLI under faults.

Pieces shared by ``test_kill_kafka_pg.py`` (Kafka → PostgreSQL: kill -9, broker and database
restarts, a temporary CHECK constraint, bounded memory while the database is down),
``test_kill_kafka_nessie.py`` (Kafka → Nessie: kill -9 and a broker restart, exactly once) and
``test_poison.py`` (poison records):

* :class:`Supervisor` — the processor as a subprocess (``Processor`` of the restart test) that is
  started again whenever it is found dead, as Kubernetes would (counted: ``crash_restarts``);
* :class:`Producer` — ids 0..N-1 into Kafka at a steady rate, held while the broker restarts;
* :class:`Schedule` — fault moments as fractions of the production time, and a timeline of events;
  :func:`kill_repeatedly` (the kill -9 series) and :func:`restart_kafka` run on it;
* :func:`restart_server` — ``env/envctl down X && env/envctl up X`` (both keep their data);
* :func:`rss_kib` — a process's resident memory from ``/proc/<pid>/status`` (no psutil);
* :class:`Classification` — every produced id is *written* (main or route sink), *errors* (an
  envelope in the errors table), *both*, or *lost*; duplicates per sink; :func:`wait_accounted`
  polls a classification until every id is accounted for.

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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from tests.reliability.test_restart_kafka_pg import Processor

REPO = Path(__file__).resolve().parents[2]
ENVCTL = REPO / "env" / "envctl"
RATE = 400  # ids produced per second


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


# ----------------------------------------------------------------------------- producing and faults


class Producer:
    """Produces ids 0..n-1 (``payload(i)``, key ``i``) at ``rate`` per second; waits while
    ``running`` is clear (broker restarts) and sends a chunk again when the broker went away."""

    def __init__(self, bootstrap: str, topic: str, n: int, payload: Callable[[int], bytes], rate: int = RATE) -> None:
        self.bootstrap, self.topic, self.n, self.payload, self.rate = bootstrap, topic, n, payload, rate
        self.running = asyncio.Event()
        self.running.set()
        self.retries = 0
        self.sent = 0

    @property
    def seconds(self) -> float:
        """How long producing takes (without broker restarts)."""
        return self.n / self.rate

    async def run(self) -> None:
        chunk = max(1, self.rate // 5)
        producer = await self._producer()
        try:
            for start in range(0, self.n, chunk):
                ids = range(start, min(start + chunk, self.n))
                while True:
                    await self.running.wait()
                    try:
                        futures = [await producer.send(self.topic, self.payload(i), key=b"%d" % i) for i in ids]
                        await asyncio.wait_for(asyncio.gather(*futures), 30)
                        break
                    except Exception:  # broker went away mid-chunk: send the chunk again
                        self.retries += 1
                        await asyncio.sleep(1)
                        await producer.stop()
                        producer = await self._producer()
                self.sent = ids[-1] + 1
                await asyncio.sleep(0.2)
        finally:
            await producer.stop()

    async def _producer(self) -> AIOKafkaProducer:
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
            try:
                await producer.start()
                return producer
            except Exception:
                await producer.stop()
                await asyncio.sleep(1)


class Schedule:
    """Fault moments as fractions of ``seconds`` (the stretched production time) from the start,
    and the timeline of what happened (``events``, printed with the classification)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.events: list[dict[str, Any]] = []

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def note(self, what: str, **extra: Any) -> None:
        self.events.append({"t": self.elapsed(), "event": what, **extra})

    def figures(self) -> dict[str, Any]:
        """Duration and timeline, for the printed classification."""
        return {"seconds": self.elapsed(), "events": self.events}

    async def at(self, fraction: float) -> None:
        await asyncio.sleep(max(0.0, self.started + fraction * self.seconds - time.monotonic()))


async def kill_repeatedly(
    supervisor: Supervisor,
    schedule: Schedule,
    producer: Producer,
    moments: Iterable[float],
    kills: int,
    may_kill: asyncio.Event | None = None,
) -> None:
    """``kill -9`` (and restart) at each moment (fractions of the schedule), never while ``may_kill``
    is clear; then extra kills 2 s apart until ``kills`` landed on a live processor (a moment that
    found it already dead — crash loop while a server was down — did not count)."""
    for fraction in sorted(moments):
        await schedule.at(fraction)
        if may_kill is not None:
            await may_kill.wait()
        supervisor.kill9()
        schedule.note("kill -9", sent=producer.sent)
    for _ in range(10):
        if supervisor.kills >= kills:
            break
        await asyncio.sleep(2)
        supervisor.kill9()
        schedule.note("kill -9 (extra)", sent=producer.sent)


async def restart_kafka(schedule: Schedule, producer: Producer) -> None:
    """Restart the broker now; the producer holds its ids meanwhile."""
    producer.running.clear()
    schedule.note("kafka down")
    seconds = await restart_server_async("kafka")
    producer.running.set()
    schedule.note("kafka up", seconds=round(seconds, 1))


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

    def __init__(self, spec: dict[str, Any], workdir: Path, name: str, secrets: dict[str, str] | None = None) -> None:
        self.processor = RepoProcessor(spec, workdir, name, secrets)
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

    def figures(self) -> dict[str, Any]:
        """What the kill series did to the processor, for the printed classification."""
        return {"kills": self.kills, "crash_restarts": self.crash_restarts, "crash_exit_codes": self.crash_codes,
                "peak_rss_mib": round(self.peak_rss_kib / 1024, 1)}

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
    errors_sink: bool = True  # False: a pipeline without one (the table leaves out the errors rows)
    duplicated: set[int] = field(default_factory=set)  # ids written more than once (any sink)

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
        if not self.errors_sink:
            return {
                "produced": self.produced,
                "written_once": len((self.written - self.duplicated) & everything),
                "duplicated": len(self.duplicated & everything),
                "lost": len(self.lost),
                "duplicates": self.duplicates,
            }
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


async def wait_accounted(
    classify: Callable[[], Awaitable[Classification]], supervisor: Supervisor, timeout: float
) -> Classification:
    """Classify until every id is accounted for (and every expected error is in), then once more
    after a short pause (anything still in flight — a duplicate — lands); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await classify()
        if not result.lost and not result.missing_expected_errors:
            await asyncio.sleep(2)
            return await classify()
        if time.monotonic() > deadline:
            result.print("timed out")
            raise AssertionError(f"timed out: {len(result.lost)} ids not accounted for\n{supervisor.logs()[-8000:]}")
        await asyncio.sleep(2)


def count_children(rows: list[asyncpg.Record], children: int) -> tuple[set[int], int]:
    """Ids with all their ``children`` rows present, and how many rows are duplicates."""
    per_child = Counter((r["id"], r["sub"]) for r in rows)
    duplicates = sum(n - 1 for n in per_child.values())
    per_id = Counter(i for i, _ in per_child)
    return {i for i, n in per_id.items() if n >= children}, duplicates
