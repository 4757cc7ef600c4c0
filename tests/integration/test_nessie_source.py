"""Nessie source against the real Nessie + S3 store: only snapshots newer than the checkpoint are
read (incremental by data sequence number), each appended row is emitted once across polls and
restarts, and Iceberg types become JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.memory import MemorySink
from dataflow_processor.connectors.nessie import NessieSource, catalog_uri
from dataflow_processor.pipeline import PipelineSettings
from dataflow_processor.spec.connectors import NessieSourceConfig

from tests.integration.conftest import collect, nessie_catalog, nessie_connector

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("checkpoint_dir")]

BATCHES_OF_40 = PipelineSettings(batch_size=40, linger_seconds=0.01, commit_interval=0.05, retry_initial=0.05)
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def make_source(namespace: str, table: str, name: str = "reader") -> NessieSource:
    config = NessieSourceConfig.model_validate(nessie_connector(namespace, table, pollInterval=1))
    return NessieSource(config, ConnectorContext("it", name, "source"))


def append(table: Any, ids: range) -> None:
    table.append(pa.table({"id": list(ids), "name": [f"n{i}" for i in ids]}, schema=SCHEMA))



def ids(sink: MemorySink) -> list[int]:
    return [r.value["id"] for r in sink.records]  # type: ignore[index]


async def test_each_appended_row_once_across_polls_and_restarts(nessie_namespace: str) -> None:
    table = nessie_catalog().create_table((nessie_namespace, "events"), schema=SCHEMA)
    for start in (0, 100, 200):  # three commits
        append(table, range(start, start + 100))

    first = make_source(nessie_namespace, "events")
    sink = await collect(first, 300, settings=BATCHES_OF_40)
    assert sorted(ids(sink)) == list(range(300)) and len(sink.records) == 300
    assert sink.records[0].value == {"id": 0, "name": "n0"}
    assert dict(sink.records[0].metadata) == {"namespace": nessie_namespace, "table": "events"}
    assert first.files_read == 3
    assert first.polls >= 2  # later polls found nothing new and read no file

    for start in (300, 350):
        append(table, range(start, start + 50))
    second = make_source(nessie_namespace, "events")  # a restart: resumes from the checkpoint
    sink = await collect(second, 100, settings=BATCHES_OF_40)
    assert sorted(ids(sink)) == list(range(300, 400)) and len(sink.records) == 100
    assert second.files_read == 2  # only the two new data files, not the table

    third = make_source(nessie_namespace, "events")
    task = asyncio.create_task(collect(third, 30))
    await asyncio.sleep(1.5)  # running, nothing new yet
    await asyncio.to_thread(append, nessie_catalog().load_table((nessie_namespace, "events")), range(400, 430))
    sink = await task
    assert ids(sink) == list(range(400, 430))
    assert third.files_read == 1


async def test_restart_mid_file_resumes_after_last_acknowledged_row(nessie_namespace: str) -> None:
    table = nessie_catalog().create_table((nessie_namespace, "events"), schema=SCHEMA)
    append(table, range(0, 100))
    source = make_source(nessie_namespace, "events")
    await source.connect()
    batches = source.batches(BatchPolicy(30, 0.01))
    first = await batches.__anext__()
    second = await batches.__anext__()
    assert [r.value["id"] for r in first + second] == list(range(60))  # type: ignore[index]
    assert first[-1].position is not None
    await source.ack({source.partition: first[-1].position.offset + 1})  # only the first 30 are done
    await source.close()

    restarted = make_source(nessie_namespace, "events")
    sink = await collect(restarted, 70, settings=BATCHES_OF_40)
    assert ids(sink) == list(range(30, 100))


async def test_types_become_json(nessie_namespace: str) -> None:
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("price", pa.decimal128(10, 2)),
            pa.field("day", pa.date32()),
            pa.field("at", pa.timestamp("us")),
            pa.field("at_tz", pa.timestamp("us", tz="UTC")),
            pa.field("blob", pa.binary()),
            pa.field("ratio", pa.float64()),
            pa.field("ok", pa.bool_()),
            pa.field("tags", pa.list_(pa.string())),
        ]
    )
    table = nessie_catalog().create_table((nessie_namespace, "typed"), schema=schema)
    row = {
        "id": 1,
        "price": decimal.Decimal("12.50"),
        "day": dt.date(2024, 5, 6),
        "at": dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
        "at_tz": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
        "blob": b"hi",
        "ratio": float("nan"),
        "ok": True,
        "tags": ["a", "b"],
    }
    table.append(pa.Table.from_pylist([row], schema=schema))
    source = make_source(nessie_namespace, "typed")
    await source.connect()
    batch = await source.batches(BatchPolicy(10, 0.01)).__anext__()
    await source.close()
    assert batch[0].value == {
        "id": 1,
        "price": "12.50",
        "day": "2024-05-06",
        "at": "2024-05-06T07:08:09.123456",
        "at_tz": "2024-05-06T07:08:09+00:00",
        "blob": "aGk=",
        "ratio": "nan",
        "ok": True,
        "tags": ["a", "b"],
    }


async def test_s3_credentials_from_the_environment(nessie_namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without accessKey/secretAccessKey/s3Endpoint the original's AWS_* variables are used."""
    config = nessie_connector(nessie_namespace, "events", pollInterval=1)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", config.pop("accessKey"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", config.pop("secretAccessKey"))
    monkeypatch.setenv("AWS_S3_ENDPOINT", config.pop("s3Endpoint"))
    table = nessie_catalog().create_table((nessie_namespace, "events"), schema=SCHEMA)
    append(table, range(3))
    source = NessieSource(NessieSourceConfig.model_validate(config), ConnectorContext("it", "env", "source"))
    await source.connect()
    batch = await source.batches(BatchPolicy(10, 0.01)).__anext__()
    await source.close()
    assert [r.value["id"] for r in batch] == [0, 1, 2]  # type: ignore[index]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    wrong = NessieSource(NessieSourceConfig.model_validate(config), ConnectorContext("it", "env2", "source"))
    await wrong.connect()
    with pytest.raises(OSError):
        await asyncio.to_thread(lambda: [wrong._read_file(f[2]) for f in wrong._new_files()])


async def test_missing_table_fails_at_connect(nessie_namespace: str) -> None:
    from pyiceberg.exceptions import NoSuchTableError

    with pytest.raises(NoSuchTableError):
        await make_source(nessie_namespace, "absent").connect()


async def test_checkpoint_of_the_previous_version_is_resumed(nessie_namespace: str, checkpoint_dir: Path) -> None:
    """An in-place upgrade: the previous version's document (``{"nessie": …, "cursor"}``), saved in
    the middle of a data file, resumes at the next row."""
    table = nessie_catalog().create_table((nessie_namespace, "events"), schema=SCHEMA)
    append(table, range(0, 50))
    source = make_source(nessie_namespace, "events", name="old")
    await source.connect()
    ((sequence, path, _),) = await asyncio.to_thread(source._new_files)
    await source.close()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    old = {"nessie": f"{catalog_uri(source.config)}#{nessie_namespace}.events", "cursor": [sequence, path, 20]}
    (checkpoint_dir / "it.old.json").write_text(json.dumps(old))
    sink = await collect(make_source(nessie_namespace, "events", name="old"), 30, settings=BATCHES_OF_40)
    assert ids(sink) == list(range(20, 50))
    stored = json.loads((checkpoint_dir / "it.old.json").read_text())
    assert stored["source"] == "nessie" and stored["cursor"] == [sequence, path, -1]
