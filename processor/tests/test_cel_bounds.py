"""User CEL cannot hang a processor: static cost bounds at compile time, a deadline per record at
run time, and the chain off the event loop so the health endpoints answer while it runs.

Before: a 300⁴ nested comprehension passed ``validate``, then hung its record forever on the event
loop; ``/livez`` stopped answering, the pod was killed and the record came back (a poison pill).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dataflow_processor import cel_cost
from dataflow_processor.cli import main, parse_args
from dataflow_processor.conditions import ConditionError, ConditionTimeout, compile_condition
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.health import HealthServer
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.records import Record
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.transforms.chain import TransformChain

LIST_300 = "[" + ",".join(["1"] * 300) + "]"
BOMB = f"{LIST_300}.all(a, {LIST_300}.all(b, {LIST_300}.all(c, {LIST_300}.all(d, true))))"
# Cost grows with the record: len(xs)³ evaluations of the body; no static bound can see that.
SLOW = "record.xs.all(a, record.xs.all(b, record.xs.all(c, a + b + c >= 0)))"
SLOW_RECORD = {"id": 0, "xs": list(range(100))}  # 10⁶ evaluations: many seconds in celpy

FAST = PipelineSettings(batch_size=10, linger_seconds=0.001, commit_interval=0.001, queue_size=2)


def chain(*specs: dict[str, Any], timeout: float = 1.0) -> TransformChain:
    return TransformChain.from_spec([TransformationSpec.model_validate(s) for s in specs], condition_timeout=timeout)


def filter_spec(condition: str) -> dict[str, Any]:
    return {"type": "filter", "filter": {"condition": condition}}


def manifest(tmp_path: Path, condition: str, *, router: bool = False) -> Path:
    transformations: list[dict[str, Any]] = [{"type": "timestamp", "timestamp": {}}]
    sink = {"type": "kafka", "kafka": {"brokers": ["127.0.0.1:9"], "topic": "r"}}
    if router:
        routes = [{"condition": "$.a", "sink": sink}, {"condition": condition, "sink": sink}]
        transformations.append({"type": "router", "router": {"routes": routes}})
    else:
        transformations.append(filter_spec(condition))
    doc = {
        "apiVersion": "dataflow.dataflow.io/v1",
        "kind": "DataFlow",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {
            "source": {"type": "kafka", "kafka": {"brokers": ["127.0.0.1:9"], "topic": "orders"}},
            "transformations": transformations,
            "sink": {
                "type": "postgresql",
                "postgresql": {"connectionString": "postgres://127.0.0.1:9/x", "table": "t"},
            },
        },
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------------- compile time


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (BOMB, "may cost more than"),
        (f"{LIST_300}.all(a, {LIST_300}.exists(b, a == b))", "may cost more than"),
        ("[" + ",".join(["1"] * 501) + "] == x", "501 entries"),
        ("{" + ",".join(f"{i}: 1" for i in range(501)) + "} == x", "501 entries"),
        ("x.all(a, x.all(b, x.all(c, x.all(d, true))))", "nested more than 3 deep"),
        (" || ".join(["a == 1"] * 170), "nested too deeply"),
        ("(" * 20 + "a" + ")" * 20 + " == 1", "nested too deeply"),
        ("a == '" + "x" * 5000 + "'", "at most 4096 characters"),
    ],
)
def test_costly_expressions_are_refused_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason) as refused:
        compile_condition(text, field="spec.transformations[1].filter.condition")
    assert str(refused.value).startswith("spec.transformations[1].filter.condition: ")


@pytest.mark.parametrize(
    "text",
    [
        f"{LIST_300}.all(a, a > 0)",  # one comprehension over a literal
        "record.orders.all(o, o.lines.all(l, l.tags.exists(t, t == 'x')))",  # 3 deep over data
        "status in [" + ",".join(f"'s{i}'" for i in range(500)) + "]",
        " || ".join(["a == 1"] * 100),
        "(" * 10 + "a" + ")" * 10 + " == 1",
    ],
)
def test_expressions_within_the_bounds_compile(text: str) -> None:
    assert compile_condition(text).kind == "cel"


def test_the_cost_estimate_multiplies_literal_ranges() -> None:
    from dataflow_processor.cel_program import parse

    one = cel_cost.check_cost(parse("[1, 2, 3].all(x, x > 0)"))
    nested = cel_cost.check_cost(parse("[1, 2, 3].all(x, [1, 2, 3].all(y, x > y))"))
    assert nested > 3 * one
    over_data = cel_cost.check_cost(parse("record.a.all(x, record.a.all(y, x > y))"))
    assert over_data < nested  # a range from the record counts once: the deadline bounds it


def test_validate_refuses_a_costly_filter_condition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = manifest(tmp_path, BOMB)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: spec.transformations[1].filter.condition: the expression may cost more than" in err


def test_validate_refuses_a_costly_route_condition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = manifest(tmp_path, BOMB, router=True)
    assert main(["validate", str(path)]) == 1
    assert "spec.transformations[1].router.routes[1].condition: the expression may cost" in capsys.readouterr().err


def test_preview_refuses_a_costly_condition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = manifest(tmp_path, BOMB)
    monkeypatch.setattr("sys.stdin", type("S", (), {"buffer": type("B", (), {"read": lambda self: b"{}"})()})())
    assert main(["preview", "--spec-path", str(path)]) == 1
    assert "spec.transformations[1].filter.condition: the expression may cost" in capsys.readouterr().err


def test_the_processor_does_not_start_with_a_costly_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = manifest(tmp_path, BOMB)
    args = ["run", "--spec-path", str(path), "--namespace", "shop", "--name", "orders"]
    args += ["--secrets-path", str(tmp_path / "none"), "--health-port", "0"]
    assert main(args) == 1
    assert "cannot start: spec.transformations[1].filter.condition: the expression may cost" in capsys.readouterr().err


def test_the_deadline_is_a_flag_and_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["--spec-path", "s", "--namespace", "n", "--name", "x"]
    assert parse_args(base).condition_timeout_ms == 1000
    assert parse_args([*base, "--condition-timeout-ms", "250"]).condition_timeout_ms == 250
    monkeypatch.setenv("PROCESSOR_CONDITION_TIMEOUT_MS", "40")
    assert parse_args(base).condition_timeout_ms == 40
    with pytest.raises(SystemExit):
        parse_args([*base, "--condition-timeout-ms", "0"])


# ---------------------------------------------------------------------------- run time


def test_a_record_past_its_deadline_fails_and_the_next_records_go_on() -> None:
    flow = chain(filter_spec(SLOW), timeout=0.2)
    records = [Record(SLOW_RECORD), Record({"id": 1, "xs": [1]}), Record({"id": 2, "xs": []})]
    out, failures = flow.run(records)
    assert [r.value["id"] for r in out if r.value] == [1, 2]
    assert [(f.record.value["id"] if f.record.value else None, f.transform_index) for f in failures] == [(0, 0)]
    assert failures[0].error.startswith("ConditionTimeout: spec.transformations[0].filter.condition: ")
    assert "took longer than 0.2s" in failures[0].error


def test_a_route_condition_past_its_deadline_fails_the_record() -> None:
    sink = {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "r"}}
    flow = chain(
        {
            "type": "router",
            "router": {"routes": [{"condition": "$.vip", "sink": sink}, {"condition": SLOW, "sink": sink}]},
        },
        timeout=0.2,
    )
    out, failures = flow.run([Record(SLOW_RECORD), Record({"id": 1, "vip": True}), Record({"id": 2, "xs": [1]})])
    assert [(r.value["id"] if r.value else None, r.route) for r in out] == [(1, 0), (2, 1)]
    assert len(failures) == 1
    assert failures[0].error.startswith("ConditionTimeout: spec.transformations[0].router.routes[1].condition: ")


def test_the_deadline_reaches_inside_comprehension_bodies() -> None:
    condition = compile_condition(SLOW, timeout=0.05)
    with pytest.raises(ConditionTimeout):
        condition.predicate(SLOW_RECORD)
    assert condition.predicate({"xs": [1, 2]})  # the next evaluation gets a fresh deadline


def _probe(port: int, finished: threading.Event) -> tuple[int, bool]:
    """GET /livez from another thread, as the kubelet would; say whether the batch was still running."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=60) as response:
        return response.status, not finished.is_set()


@pytest.mark.timeout(120)
async def test_livez_answers_while_a_slow_batch_runs_and_the_slow_record_goes_to_errors() -> None:
    flow = chain(filter_spec(SLOW), timeout=2.0)
    started, finished = threading.Event(), threading.Event()
    run = flow.run

    def observed(batch: list[Record]) -> Any:
        started.set()
        try:
            return run(batch)
        finally:
            finished.set()

    flow.run = observed  # type: ignore[method-assign]
    source = MemorySource([SLOW_RECORD, {"id": 1, "xs": [1]}, {"id": 2, "xs": []}])
    sink, errors = MemorySink(), MemorySink()
    pipeline = Pipeline(source=source, chain=flow, sink=sink, errors_sink=errors, settings=FAST)
    health = HealthServer(pipeline.metrics, lambda: pipeline.ready, host="127.0.0.1", port=0)
    await health.start()
    try:
        running = asyncio.create_task(pipeline.run())
        assert await asyncio.to_thread(started.wait, 60)
        status, during_batch = await asyncio.to_thread(_probe, health.port, finished)
        assert status == 200
        assert during_batch, "/livez answered only after the batch had finished"
        await asyncio.wait_for(running, 60)
    finally:
        await health.stop()
    assert [v["id"] for v in sink.values] == [1, 2]
    assert len(errors.values) == 1
    envelope = errors.values[0]
    assert envelope["error"]["stage"] == "transform"
    assert envelope["error"]["transformation"] == {"index": 0, "type": "filter"}
    assert "ConditionTimeout: spec.transformations[0].filter.condition: " in envelope["error"]["message"]
    assert envelope["original_message"]["id"] == 0
    assert source.committed == {0: 3}  # every record acknowledged: written or in the errors sink


async def test_a_chain_without_cel_stays_on_the_event_loop() -> None:
    flow = chain(
        filter_spec("$.keep"),
        {
            "type": "router",
            "router": {
                "routes": [
                    {
                        "condition": "$.kind == 'a'",
                        "sink": {"type": "kafka", "kafka": {"brokers": ["k:1"], "topic": "a"}},
                    }
                ]
            },
        },
    )
    assert not flow.runs_cel
    assert chain(filter_spec("keep > 1")).runs_cel
    loop_thread = threading.get_ident()
    seen: list[int] = []
    run = flow.run
    flow.run = lambda batch: (seen.append(threading.get_ident()), run(batch))[1]  # type: ignore[method-assign]
    source = MemorySource([{"keep": True, "kind": "b"}])
    sink = MemorySink()
    await Pipeline(source=source, chain=flow, sink=sink, route_sinks={0: MemorySink()}, settings=FAST).run()
    assert sink.values == [{"keep": True, "kind": "b"}]
    assert seen == [loop_thread]
