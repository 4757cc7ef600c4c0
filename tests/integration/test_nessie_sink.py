"""Nessie sink against the real Nessie + S3 store: typed auto-create, large commits, failures,
branches, auth, and the positions in each snapshot summary that make a replay skip what was
already committed (exactly once)."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.connectors.nessie import POSITIONS_KEY, NessieSink
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.records import Position, Record
from dataflow_processor.spec.connectors import NessieSinkConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import nessie_catalog, nessie_connector, unique
from tests.integration.http_doubles import RecordingProxy

pytestmark = pytest.mark.integration

FAST = PipelineSettings(batch_size=100, linger_seconds=0.01, commit_interval=0.05, retry_initial=0.05, retry_max=0.5)


def make_sink(namespace: str, table: str, name: str = "flow", **extra: Any) -> NessieSink:
    config = NessieSinkConfig.model_validate(nessie_connector(namespace, table, **extra))
    return NessieSink(config, ConnectorContext("it", name, "sink"))


async def run(source: MemorySource, sink: NessieSink, errors: MemorySink | None = None) -> None:
    await Pipeline(
        source=source, chain=TransformChain.from_spec([]), sink=sink, errors_sink=errors, settings=FAST
    ).run()


def table_rows(namespace: str, table: str, ref: str = "main") -> list[dict[str, Any]]:
    rows = nessie_catalog(ref).load_table((namespace, table)).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r.get("id") is None, r.get("id")))


def summary(namespace: str, table: str) -> dict[str, str]:
    snapshot = nessie_catalog().load_table((namespace, table)).current_snapshot()
    return dict(snapshot.summary.additional_properties)


async def test_typed_auto_create_large_commits_and_bad_values(nessie_namespace: str) -> None:
    values = [
        {"id": i, "name": f"n{i}", "score": i / 2, "vip": i % 7 == 0, "doc": {"k": i}, "note": None, "extra": 1}
        for i in range(250)
    ]
    values[150]["id"] = "one hundred fifty"  # cannot be a long: that record alone goes to the errors sink
    values[151]["score"] = {"nested": True}  # cannot be a double
    sink = make_sink(nessie_namespace, "events", autoCreateTable=True, batchSize=100, batchFlushIntervalSeconds=0.2)
    errors = MemorySink()
    source = MemorySource(values, partitions=2)
    await run(source, sink, errors)

    table = nessie_catalog().load_table((nessie_namespace, "events"))
    assert [(f.name, str(f.field_type)) for f in table.schema().fields] == [
        ("id", "long"),
        ("name", "string"),
        ("score", "double"),
        ("vip", "boolean"),
        ("doc", "string"),
        ("note", "string"),
        ("extra", "long"),
    ]
    rows = table_rows(nessie_namespace, "events")
    assert [r["id"] for r in rows] == [i for i in range(250) if i not in (150, 151)]
    assert rows[7] == {"id": 7, "name": "n7", "score": 3.5, "vip": True, "doc": '{"k":7}', "note": None, "extra": 1}
    assert sorted(e["original_message"]["name"] for e in errors.values) == ["n150", "n151"]
    assert "not an integer" in " ".join(e["error"]["message"] for e in errors.values)
    assert sink.commits == 3  # 250 rows in commits of 100, 100 (2 rejected), 50
    data_files = list(table.inspect.files().to_pylist())
    assert sorted(f["record_count"] for f in data_files) == [50, 98, 100]
    positions = json.loads(summary(nessie_namespace, "events")[POSITIONS_KEY])
    assert positions == {"it/flow/sink": {"0": [124, 1], "1": [124, 1]}}
    assert source.committed == {0: 125, 1: 125}


async def test_raw_mode_single_data_column(nessie_namespace: str) -> None:
    sink = make_sink(nessie_namespace, "raw", autoCreateTable=True, rawMode=True, batchSize=10)
    await run(MemorySource([{"id": 1, "a": "x"}, {"id": 2}]), sink)
    table = nessie_catalog().load_table((nessie_namespace, "raw"))
    assert [f.name for f in table.schema().fields] == ["data"]
    rows = sorted(r["data"] for r in table.scan().to_arrow().to_pylist())
    assert rows == ['{"id":1,"a":"x"}', '{"id":2}']


async def test_missing_table_without_auto_create_fails(nessie_namespace: str) -> None:
    sink = make_sink(nessie_namespace, "absent")
    with pytest.raises(RuntimeError, match="does not exist and autoCreateTable is not set"):
        await sink.connect()


async def test_replay_after_crash_skips_committed_records(nessie_namespace: str) -> None:
    """A second processor (same DataFlow) re-reads everything: only the new records are appended."""
    first = make_sink(nessie_namespace, "events", autoCreateTable=True, batchSize=100)
    await run(MemorySource([{"id": i} for i in range(300)], partitions=3), first)
    assert first.commits == 3

    second = make_sink(nessie_namespace, "events", batchSize=100)  # a restarted process: nothing in memory
    await run(MemorySource([{"id": i} for i in range(400)], partitions=3), second)
    assert second.skipped == 300
    assert [r["id"] for r in table_rows(nessie_namespace, "events")] == list(range(400))

    other = make_sink(nessie_namespace, "events", name="other-flow", batchSize=100)  # another DataFlow's positions
    await run(MemorySource([{"id": 1000 + i} for i in range(10)]), other)
    assert other.skipped == 0
    positions = json.loads(summary(nessie_namespace, "events")[POSITIONS_KEY])
    assert positions == {
        "it/flow/sink": {"0": [133, 1], "1": [132, 1], "2": [132, 1]},
        "it/other-flow/sink": {"0": [9, 1]},
    }


async def test_lost_commit_answer_is_not_written_twice(nessie_namespace: str) -> None:
    sink = make_sink(nessie_namespace, "events", autoCreateTable=True)
    await sink.connect()
    batch = [Record({"id": i}, position=Position(0, i)) for i in range(20)]
    assert (await sink.write(batch)).failures == []
    sink.dedup.mine = {}  # as if the commit's answer had been lost: the pipeline retries the batch
    assert (await sink.write(batch)).failures == []
    assert sink.skipped == 20 and sink.commits == 1
    assert [r["id"] for r in table_rows(nessie_namespace, "events")] == list(range(20))


async def test_fan_out_split_across_commits(nessie_namespace: str) -> None:
    """Outputs of one source record (flatten) split over two commits: a replay writes the rest once."""

    def out(offset: int, child: int) -> Record:
        return Record({"id": offset * 10 + child}, position=Position(0, offset))

    first = make_sink(nessie_namespace, "events", autoCreateTable=True)
    await first.connect()
    await first.write([out(0, 0), out(1, 0), out(1, 1)])  # committed; then the process dies

    second = make_sink(nessie_namespace, "events")
    await second.connect()
    await second.write([out(0, 0), out(1, 0)])  # replayed in smaller batches: all already in
    await second.write([out(1, 1), out(1, 2), out(2, 0)])
    assert second.skipped == 3
    assert [r["id"] for r in table_rows(nessie_namespace, "events")] == [0, 10, 11, 12, 20]
    assert json.loads(summary(nessie_namespace, "events")[POSITIONS_KEY]) == {"it/flow/sink": {"0": [2, 1]}}


def nessie_api(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


async def test_writes_on_a_branch(nessie: Any, nessie_namespace: str) -> None:
    main = nessie_api("GET", f"{nessie.url}/api/v2/trees/main")["reference"]
    branch = unique("it_branch")
    query = urllib.parse.urlencode({"name": branch, "type": "BRANCH"})
    nessie_api("POST", f"{nessie.url}/api/v2/trees?{query}", main)
    try:
        sink = make_sink(nessie_namespace, "on_branch", branch=branch, autoCreateTable=True)
        await run(MemorySource([{"id": i} for i in range(5)]), sink)
        assert [r["id"] for r in table_rows(nessie_namespace, "on_branch", ref=branch)] == list(range(5))
        assert (nessie_namespace, "on_branch") not in nessie_catalog().list_tables(nessie_namespace)
    finally:
        head = nessie_api("GET", f"{nessie.url}/api/v2/trees/{branch}")["reference"]
        nessie_api("DELETE", f"{nessie.url}/api/v2/trees/{branch}@{head['hash']}")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"token": "nessie-token"}, "Bearer nessie-token"),
        (
            {"basicAuth": {"username": "ann", "password": "pw"}, "authenticationType": "BASIC"},
            "Basic " + base64.b64encode(b"ann:pw").decode(),
        ),
        ({"token": "unused", "authenticationType": "NONE"}, None),
    ],
)
async def test_auth_header_reaches_nessie(nessie: Any, nessie_namespace: str, auth: dict, expected: str | None) -> None:
    """Nessie runs without authentication here; a recording proxy in front of it shows the header."""
    proxy = RecordingProxy(nessie.url)
    try:
        table = f"auth_{uuid.uuid4().hex[:6]}"
        sink = make_sink(nessie_namespace, table, autoCreateTable=True, **{**auth, "baseURL": proxy.url})
        await run(MemorySource([{"id": 1}]), sink)
        assert len(proxy.seen) >= 3  # config, load (404), namespace, create, commit
        assert {s.headers.get("Authorization") for s in proxy.seen} == {expected}
        assert [r["id"] for r in table_rows(nessie_namespace, table)] == [1]
    finally:
        proxy.close()
