"""A real Prometheus scrapes a real processor moving Kafka → PostgreSQL (a filter step; unparsable
records go to a Kafka errors sink), then every dashboard query and every alert expression is
evaluated through Prometheus's HTTP API and compared with the processor's own counters.

The scrape mirrors the chart's PodMonitor: job ``dataflow-processor`` (its ``jobLabel: app``), target
labels ``namespace``, ``pod`` and ``container`` as the Prometheus Operator sets them, and the
processor's own ``namespace`` label is kept as ``exported_namespace`` (honorLabels off).

Counters appear at their first increment, so a warm-up load creates every series first; the
measured window then spans only the main load, and each rate must equal the counter's increase
in that window divided by its length. The panels and alerts this test evaluates are
coverage.PROCESSOR_PANELS and PROCESSOR_ALERTS; it asserts it evaluated exactly those.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.coverage import NOT_EVALUABLE, PROCESSOR_ALERTS, PROCESSOR_PANELS
from tests.monitoring.prometheus_process import Labels, Prometheus, free_port, get, running_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "charts/dataflow-operator/files/monitoring"
JOB = "dataflow-processor"

WARMUP = (16, 2, 2)  # (kept by the filter, dropped by it, unparsable): creates every series
MAIN = (480, 60, 60)
NS, NAME = "team-mon", f"orders-{uuid.uuid4().hex[:6]}"


@dataclass
class Snapshot:
    """The processor's own /metrics: sample name → {labels: value} (processor label names)."""

    samples: dict[str, dict[Labels, float]]

    def series(self, name: str, keep: tuple[str, ...]) -> dict[Labels, float]:
        out: dict[Labels, float] = {}
        for labels, value in self.samples.get(name, {}).items():
            key = frozenset((k, v) for k, v in labels if k in keep)
            out[key] = out.get(key, 0.0) + value
        return out


def scrape(port: int) -> Snapshot:
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(get(f"http://127.0.0.1:{port}/metrics").decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return Snapshot(samples)


@pytest.fixture
def processor_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path, processor_port: int) -> Iterator[Prometheus]:
    job = {
        "job_name": JOB,
        "static_configs": [{
            "targets": [f"127.0.0.1:{processor_port}"],
            "labels": {"namespace": NS, "pod": f"dataflow-{NAME}-5d8c7b9f4-x2x7q", "container": "processor"},
        }],
    }
    with running_prometheus(tmp_path, [job]) as prom:
        yield prom


async def produce(bootstrap: str, topic: str, counts: tuple[int, int, int], start: int) -> None:
    keep, drop, bad = counts
    values = [json.dumps({"id": start + i, "kind": "keep"}).encode() for i in range(keep)]
    values += [json.dumps({"id": start + keep + i, "kind": "drop"}).encode() for i in range(drop)]
    values += [b"{not json %d" % i for i in range(bad)]
    random.Random(start).shuffle(values)  # each batch carries all three kinds
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        step = max(1, len(values) // 6)
        for i in range(0, len(values), step):
            await asyncio.gather(*[await producer.send(topic, v) for v in values[i:i + step]])
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()


def wait_for(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def rel_close(got: float, want: float, tolerance: float) -> bool:
    return math.isclose(got, want, rel_tol=tolerance, abs_tol=1e-9)


def quantile(q: float, buckets: dict[float, float]) -> float:
    """histogram_quantile as Prometheus computes it, on cumulative bucket counts by upper bound."""
    bounds = sorted(buckets)
    total = buckets[math.inf]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        lower, below = bound, buckets[bound]
    raise AssertionError("unreachable")


async def test_every_panel_and_alert_on_a_real_prometheus(
    kafka_bootstrap: str, postgres_dsn: str, prometheus: Prometheus, processor_port: int, tmp_path: Path
) -> None:
    topic, errors_topic, table = f"mon-{uuid.uuid4().hex[:8]}", f"mon-dlq-{uuid.uuid4().hex[:8]}", f"mon_{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1), NewTopic(errors_topic, 1, 1)])
    finally:
        await admin.close()
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [kafka_bootstrap], "topic": topic, "consumerGroup": topic}},
        "transformations": [{"type": "filter", "filter": {"condition": "$.kind == 'keep'"}}],
        "sink": {"type": "postgresql", "postgresql": {"connectionString": postgres_dsn, "table": table,
                                                      "autoCreateTable": True}},
        "errors": {"type": "kafka", "kafka": {"brokers": [kafka_bootstrap], "topic": errors_topic}},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cli = shutil.which("dataflow-processor") or str(Path(sys.executable).parent / "dataflow-processor")
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
    env["LOG_LEVEL"] = "warning"
    log = open(tmp_path / "processor.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [cli, "run", "--spec-path", str(tmp_path / "spec.json"), "--namespace", NS, "--name", NAME,
         "--health-port", str(processor_port), "--secrets-path", str(tmp_path / "none"), "--batch-size", "50",
         "--linger-ms", "20"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        def received() -> float:
            assert proc.poll() is None, (tmp_path / "processor.log").read_text()[-3000:]
            try:
                return sum(scrape(processor_port).series("dataflow_messages_received_total", ()).values())
            except OSError:
                return -1

        def settled(*loads: tuple[int, int, int]) -> bool:
            """Every record of these loads read, and written to the sink or the errors sink."""
            if received() < sum(map(sum, loads)):
                return False
            snap = scrape(processor_port)
            written = sum(snap.series("dataflow_connector_messages_written_total", ()).values())
            return sum(snap.series("dataflow_task_active_messages", ()).values()) == 0 and written == sum(
                keep + bad for keep, _, bad in loads)

        def seen_by_prometheus(snap: Snapshot) -> bool:
            want = sum(snap.series("dataflow_messages_received_total", ()).values())
            got = prometheus.query(f'sum(dataflow_messages_received_total{{job="{JOB}"}})', time.time())
            written = sum(snap.series("dataflow_connector_messages_written_total", ()).values())
            got_w = prometheus.query(f'sum(dataflow_connector_messages_written_total{{job="{JOB}"}})', time.time())
            return list(got.values()) == [want] and list(got_w.values()) == [written]

        # warm-up: every series exists before the measured window
        await produce(kafka_bootstrap, topic, WARMUP, 0)
        wait_for("the warm-up records", lambda: settled(WARMUP))
        c0 = scrape(processor_port)
        wait_for("Prometheus to scrape the warm-up counters", lambda: seen_by_prometheus(c0))
        time.sleep(1.5)
        t0 = time.time()
        time.sleep(1.5)
        await produce(kafka_bootstrap, topic, MAIN, 10_000)
        wait_for("the main load", lambda: settled(WARMUP, MAIN))
        c1 = scrape(processor_port)
        wait_for("Prometheus to scrape the final counters", lambda: seen_by_prometheus(c1))
        # A window of at least 24 s of 1 s scrapes: rate()'s extrapolation then moves a rate by < 10 %.
        time.sleep(max(2.0, t0 + 24 - time.time()))
        t1 = time.time()
        window = math.floor(t1 - t0)
        report = check_panels(prometheus, c0, c1, t1, window) | check_alerts(prometheus, c0, c1, t1)
        print("\n".join(f"{k}: {v}" for k, v in report.items()))  # the values the closing note lists
        (tmp_path / "values.json").write_text(json.dumps(report, indent=2))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
            await conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic, errors_topic])
        finally:
            await admin.close()
    assert rows == WARMUP[0] + MAIN[0]  # the sink holds what the counters say was written


def substitute(expr: str, window: int) -> str:
    return expr.replace("$namespace", NS).replace("$dataflow", NAME).replace("$__rate_interval", f"{window}s")


def delta(c0: Snapshot, c1: Snapshot, name: str, keep: tuple[str, ...]) -> dict[Labels, float]:
    before = c0.series(name, keep)
    return {k: v - before.get(k, 0.0) for k, v in c1.series(name, keep).items()}


def ours(labels: dict[Labels, float], keep: tuple[str, ...]) -> dict[Labels, float]:
    """Processor label sets as Prometheus returns them: namespace/name of this DataFlow."""
    return {frozenset({("namespace", NS), ("name", NAME), *((k, v) for k, v in key if k in keep)}): value
            for key, value in labels.items()}


def check_panels(prom: Prometheus, c0: Snapshot, c1: Snapshot, at: float, window: int) -> dict[str, Any]:
    """Evaluate every target of every panel; compare with what the processor's counters say."""
    rate = 0.15  # rate() over 1 s scrapes: extrapolation moves it by at most 2 s / window (< 10 %)

    def rates(name: str, keep: tuple[str, ...], where: Any = lambda k: True) -> dict[Labels, float]:
        """Increase in the window / window, summed by `keep` over the series `where` accepts."""
        out: dict[Labels, float] = {}
        for key, value in delta(c0, c1, name, ("connector_name", *keep)).items():
            if where(dict(key)):
                kept = frozenset((k, v) for k, v in key if k in keep)
                out[kept] = out.get(kept, 0.0) + value / window
        return ours(out, keep)

    def hist(q: float) -> dict[Labels, float]:
        keep = ("stage", "le")
        d = delta(c0, c1, "dataflow_task_stage_duration_seconds_bucket", keep)
        stages: dict[str, dict[float, float]] = {}
        for key, value in d.items():
            labels = dict(key)
            stages.setdefault(labels["stage"], {})[float(labels["le"])] = value
        return ours({frozenset({("stage", s)}): quantile(q, b) for s, b in stages.items()}, ("stage",))

    t_keep = ("transformer_index", "transformer_type")
    t_in = rates("dataflow_transformer_messages_in_total", t_keep)
    t_out = rates("dataflow_transformer_messages_out_total", t_keep)
    sink_keep = ("connector_name", "connector_type", "route")
    expected: dict[tuple[str, str], tuple[dict[Labels, float], float]] = {
        ("Records in / s", "A"): (rates("dataflow_messages_received_total", ()), rate),
        ("Records out / s by sink and route", "A"): (
            rates("dataflow_connector_messages_written_total", sink_keep, lambda k: k["connector_name"] != "errors"),
            rate),
        ("Errors sink writes / s", "A"): (
            rates("dataflow_connector_messages_written_total", (), lambda k: k["connector_name"] == "errors"), rate),
        ("Errors / s by stage and type", "A"): (rates("dataflow_task_stage_errors_total", ("stage", "error_type")), rate),
        ("Connectors up", "A"): (ours(c1.series("dataflow_connector_connection_status",
                                                ("connector_type", "connector_name")),
                                      ("connector_type", "connector_name")), 0.0),
        ("Transformations: in / out / dropped per step", "A"): (t_in, rate),
        ("Transformations: in / out / dropped per step", "B"): (t_out, rate),
        ("Transformations: in / out / dropped per step", "C"): ({k: v - t_out[k] for k, v in t_in.items()}, rate),
        ("Sink write latency p95 / p99", "A"): (hist(0.95), 0.02),
        ("Sink write latency p95 / p99", "B"): (hist(0.99), 0.02),
        ("Queue sizes", "A"): (ours(c1.series("dataflow_task_queue_size", ("queue_type",)), ("queue_type",)), 0.0),
        ("In-flight records", "A"): (ours(c1.series("dataflow_task_active_messages", ()), ()), 0.0),
    }
    # The counters themselves must say what the load was, or the comparison proves little.
    received = sum(delta(c0, c1, "dataflow_messages_received_total", ()).values())
    errors_written = sum(rates("dataflow_connector_messages_written_total", (),
                               lambda k: k["connector_name"] == "errors").values()) * window
    assert (received, round(errors_written)) == (sum(MAIN), MAIN[2])
    assert sum(t_in.values()) * window == MAIN[0] + MAIN[1] and sum(t_out.values()) * window == MAIN[0]

    board = json.loads((MONITORING / "dataflow-dashboard.json").read_text())
    report: dict[str, Any] = {}
    evaluated = set()
    for panel in board["panels"]:
        if panel["title"] not in PROCESSOR_PANELS:
            continue
        evaluated.add(panel["title"])
        for target in panel["targets"]:
            key = (panel["title"], target["refId"])
            want, tolerance = expected.pop(key)
            got = prom.query(substitute(target["expr"], window), at)
            assert got, f"{key}: no series"
            assert set(got) == set(want), f"{key}: series {sorted(map(sorted, got))} != {sorted(map(sorted, want))}"
            for labels, value in got.items():
                assert rel_close(value, want[labels], tolerance), f"{key} {sorted(labels)}: {value} != {want[labels]}"
            report[f"{panel['title']} [{target['refId']}]"] = {
                ",".join(f"{k}={v}" for k, v in sorted(labels) if k not in {"namespace", "name"}) or "-": round(v, 4)
                for labels, v in got.items()}
    assert not expected, f"panels without a target: {sorted(expected)}"
    assert evaluated == PROCESSOR_PANELS
    return report


def check_alerts(prom: Prometheus, c0: Snapshot, c1: Snapshot, at: float) -> dict[str, Any]:
    """Each alert's expression as written, and its parts, against what this run did."""
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())["groups"]
             for r in g["rules"]}
    main_ratio = MAIN[2] / sum(MAIN)
    written_total = sum(c1.series("dataflow_connector_messages_written_total", ()).values())
    connectors = ours(c1.series("dataflow_connector_connection_status", ("connector_type", "connector_name")),
                      ("connector_type", "connector_name"))
    assert "dataflow_connector_errors_total" not in c1.samples or not c1.samples["dataflow_connector_errors_total"]
    j = f'{{job="{JOB}"}}'
    # alert → (expected result of the whole expression, [(part, check of its result)])
    cases: dict[str, tuple[str, list[tuple[str, Any]]]] = {
        "DataFlowNoProgress": ("quiet", [
            (f"max by (namespace, name) (dataflow_task_active_messages{j})", lambda r: list(r.values()) == [0.0]),
            (f"sum by (namespace, name) (increase(dataflow_connector_messages_written_total{j}[10m]))",
             # the series started in the window: increase counts from their first scrape (warm-up)
             lambda r: sum(MAIN) - MAIN[1] - 1 <= sum(r.values()) <= written_total * 1.2),
        ]),
        "DataFlowConnectorDown": ("quiet", [
            (f"max by (namespace, name, connector_type, connector_name) (dataflow_connector_connection_status{j})",
             lambda r: r == connectors and set(r.values()) == {1.0}),
            # this run had no connector errors: the processor has no such series, and neither has Prometheus
            (f"sum by (namespace, name, connector_type, connector_name) (rate(dataflow_connector_errors_total{j}[5m]))",
             lambda r: r == {}),
        ]),
        "DataFlowErrorRatioHigh": ("fires", [
            (f"sum by (namespace, name) (rate(dataflow_task_stage_errors_total{j}[10m]))", lambda r: len(r) == 1),
            (f"sum by (namespace, name) (rate(dataflow_messages_received_total{j}[10m]))", lambda r: len(r) == 1),
        ]),
    }
    report: dict[str, Any] = {}
    for alert, expr in rules.items():
        if alert not in PROCESSOR_ALERTS:
            assert f"alert {alert}" in NOT_EVALUABLE
            continue
        outcome, parts = cases.pop(alert)
        result = prom.query(expr, at)
        if outcome == "quiet":
            assert result == {}, f"{alert} would fire on a healthy run: {result}"
        else:
            assert list(result) == [frozenset({("namespace", NS), ("name", NAME)})], f"{alert}: {result}"
            (ratio,) = result.values()
            assert rel_close(ratio, main_ratio, 0.3), f"{alert}: error ratio {ratio}, the load had {main_ratio}"
        report[f"alert {alert}"] = {"fires": bool(result), **{",".join(sorted(f"{k}={v}" for k, v in lab)): round(v, 4)
                                                            for lab, v in result.items()}}
        for part, check in parts:
            assert part in " ".join(expr.split()), f"{alert}: {part!r} is not part of its expression"
            got = prom.query(part, at)
            assert check(got), f"{alert}: {part} returned {got}"
            report[f"alert {alert} part {part}"] = [round(v, 4) for v in got.values()]
    assert not cases, f"alerts without a check: {sorted(cases)}"
    return report
