"""The polling-source contract, run over every polling source (PostgreSQL, Trino, Nessie).

Each source is its real class — the real base (:mod:`dataflow_processor.connectors.polling`) and
the technology's real cursor, identity, cursor encoding and value conversion — with only its
server replaced: ``open``/``shut`` do nothing and ``pages`` (the fetch hook) reads a table of
ids ``1..N`` kept in memory, in the row shape the technology's driver returns. The checkpoint store
is in memory too, and can be told to fail.

The contract: a restart resumes right after the last acknowledged row; a checkpoint made for
another configuration (identity) is not resumed; the checkpoint never holds a row at or past the
watermark, and a failed save keeps the rows pending for the next acknowledgement. Checkpoints in
the formats earlier versions wrote (one per source) restore too, from the ConfigMap store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.checkpoint import (
    CONFIGMAP_KEY,
    Checkpoint,
    CheckpointStore,
    ConfigMapCheckpointStore,
)
from dataflow_processor.connectors.nessie import NessieSource, catalog_uri
from dataflow_processor.connectors.polling import PollingSource
from dataflow_processor.connectors.postgresql import PostgresSource
from dataflow_processor.connectors.trino import TrinoSource
from dataflow_processor.records import Record
from dataflow_processor.spec.connectors import NessieSourceConfig, PostgresSourceConfig, TrinoSourceConfig

ROWS = 10
FILE_ROWS = 4  # Nessie: the table's rows are in data files of 4, 4 and 2 rows (one commit each)


class MemoryStore(CheckpointStore):
    where = "memory"

    def __init__(self) -> None:
        self.document: dict[str, Any] | None = None
        self.saves = 0
        self.failing = False

    async def load(self) -> dict[str, Any] | None:
        return self.document

    async def save(self, state: dict[str, Any]) -> None:
        if self.failing:
            raise ConnectionError("store unavailable")
        self.saves += 1
        self.document = orjson.loads(orjson.dumps(state))  # what a real store keeps: JSON


# ----------------------------------------------------------------------------- the fakes of the server


class FakePostgres(PostgresSource):
    """A table ``(id, name)`` polled by ``id``: one LIMIT query per poll (rows as dicts, like asyncpg.Record)."""

    async def open(self) -> None:
        pass

    async def shut(self) -> None:
        pass

    async def pages(self, after: Any, page_size: int) -> AsyncGenerator[list[Any], None]:
        start = after[0] if after else 0
        yield [{"id": i, "name": f"n{i}"} for i in range(start + 1, min(start + page_size, ROWS) + 1)]


class FakeTrino(TrinoSource):
    """``SELECT * … WHERE id > <key> ORDER BY id LIMIT n`` over ``(id bigint, name varchar)``."""

    columns = [("id", "bigint"), ("name", "varchar")]

    async def open(self) -> None:
        pass

    async def shut(self) -> None:
        pass

    async def pages(self, after: Any, page_size: int) -> AsyncGenerator[list[Any], None]:
        start = after["key"] if after else 0
        ids = range(start + 1, min(start + page_size, ROWS) + 1)
        yield [(self.columns, 0, [i, f"n{i}"]) for i in ids]


class FakeNessie(NessieSource):
    """Data files of ``FILE_ROWS`` rows, one per commit (sequence 1, 2, …), read file by file."""

    async def open(self) -> None:
        pass

    async def shut(self) -> None:
        pass

    async def pages(self, after: Any, page_size: int) -> AsyncGenerator[list[Any], None]:
        ids = list(range(1, ROWS + 1))
        files = [(n + 1, f"s3://w/f{n + 1}.parquet", ids[i : i + FILE_ROWS]) for n, i in enumerate(range(0, ROWS, 4))]
        seq, path, row = after or (-1, "", 0)
        for sequence, name, content in files:
            if (sequence, name) < (seq, path) or ((sequence, name) == (seq, path) and row == -1):
                continue
            first = row if (sequence, name) == (seq, path) else 0
            rows = [{"id": i, "name": f"n{i}"} for i in content]
            yield [(sequence, name, index, len(rows), rows[index]) for index in range(first, len(rows))]


@dataclass(frozen=True)
class Technology:
    name: str
    make: Callable[[str, CheckpointStore], PollingSource[Any, Any]]  # (table, store) → source
    legacy: Callable[[PollingSource[Any, Any], int], dict[str, Any]]  # today's document after row id n


def postgres(table: str, store: CheckpointStore) -> PollingSource[Any, Any]:
    config = PostgresSourceConfig.model_validate(
        {"connectionString": "postgresql://fake/db", "table": table, "pollInterval": 1, "readBatchSize": 3}
    )
    return FakePostgres(config, ConnectorContext("shop", "orders", "source", checkpoints=store))


def trino(table: str, store: CheckpointStore) -> PollingSource[Any, Any]:
    config = TrinoSourceConfig.model_validate(
        {"serverURL": "http://fake:8080", "catalog": "c", "schema": "s", "table": table, "pollInterval": 1}
    )
    return FakeTrino(config, ConnectorContext("shop", "orders", "source", checkpoints=store))


def nessie(table: str, store: CheckpointStore) -> PollingSource[Any, Any]:
    config = NessieSourceConfig.model_validate(
        {"baseURL": "http://fake:19120/api/v1", "namespace": "ns", "table": table, "pollInterval": 1}
    )
    return FakeNessie(config, ConnectorContext("shop", "orders", "source", checkpoints=store))


# The documents the previous version of each source wrote after acknowledging the row with id n
# (copied from its code: connectors/postgresql.py, trino.py and nessie.py before the polling base).


def postgres_legacy(source: PollingSource[Any, Any], n: int) -> dict[str, Any]:
    return {
        "identity": {"source": "postgresql", "table": "events", "columns": ["id"]},
        "cursor": [n],
        "savedAt": "2026-11-30T10:00:00+00:00",
    }


def trino_legacy(source: PollingSource[Any, Any], n: int) -> dict[str, Any]:
    return {"trino": "c.s.events||id", "key": n, "keyType": "bigint"}


def nessie_legacy(source: PollingSource[Any, Any], n: int) -> dict[str, Any]:
    assert isinstance(source, NessieSource)
    index = (n - 1) % FILE_ROWS
    file = (n - 1) // FILE_ROWS + 1
    count = min(FILE_ROWS, ROWS - (file - 1) * FILE_ROWS)
    cursor = [file, f"s3://w/f{file}.parquet", index + 1 if index + 1 < count else -1]
    return {"nessie": f"{catalog_uri(source.config)}#ns.events", "cursor": cursor}


TECHNOLOGIES = [
    Technology("postgresql", postgres, postgres_legacy),
    Technology("trino", trino, trino_legacy),
    Technology("nessie", nessie, nessie_legacy),
]
POLICY = BatchPolicy(max_records=3, linger_seconds=0.01)


def ids(records: list[Record]) -> list[int]:
    return [r.value["id"] for r in records]  # type: ignore[index]


async def read(source: PollingSource[Any, Any], count: int) -> list[Record]:
    """The first ``count`` records the source emits (whole batches); fails when they do not come."""
    records: list[Record] = []
    batches = source.batches(POLICY)
    while len(records) < count:
        records.extend(await asyncio.wait_for(batches.__anext__(), 3))  # pollInterval is 1 s
    await batches.aclose()  # type: ignore[attr-defined]
    return records


def watermark(source: PollingSource[Any, Any], record: Record) -> dict[Any, int]:
    """The watermark that says: every record up to and including ``record`` is done."""
    assert record.position is not None
    return {source.partition: record.position.offset + 1}


@pytest.fixture(params=TECHNOLOGIES, ids=lambda t: t.name)
def tech(request: pytest.FixtureRequest) -> Technology:
    return request.param  # type: ignore[no-any-return]


async def test_resumes_after_the_last_acknowledged_row(tech: Technology) -> None:
    store = MemoryStore()
    first = tech.make("events", store)
    await first.connect()
    records = await read(first, 7)
    assert ids(records)[:7] == [1, 2, 3, 4, 5, 6, 7]
    await first.ack(watermark(first, records[4]))  # rows 1..5 are done, 6 and 7 are not
    await first.close()
    document = store.document
    assert document is not None and document["source"] == tech.name and document["savedAt"]
    assert set(document) == {"source", "identity", "cursor", "savedAt"}

    restarted = tech.make("events", store)
    await restarted.connect()
    assert ids(await read(restarted, ROWS - 5)) == list(range(6, ROWS + 1))
    await restarted.close()


async def test_a_changed_identity_reads_from_the_start(tech: Technology) -> None:
    store = MemoryStore()
    first = tech.make("events", store)
    await first.connect()
    records = await read(first, 6)
    await first.ack(watermark(first, records[5]))
    await first.close()
    assert store.document is not None

    other_table = tech.make("other_events", store)  # the configuration changed: its identity differs
    await other_table.connect()
    assert other_table.read_cursor is None
    assert ids(await read(other_table, 3))[:3] == [1, 2, 3]
    await other_table.close()


async def test_never_saves_past_the_watermark(tech: Technology) -> None:
    store = MemoryStore()
    source = tech.make("events", store)
    await source.connect()
    records = await read(source, ROWS)
    assert ids(records) == list(range(1, ROWS + 1))
    cursor_after = dict(source._inflight)  # offset → the cursor after that row, as the source computed it
    offsets = [r.position.offset for r in records if r.position is not None]

    await source.ack({source.partition: offsets[0]})  # nothing done yet
    assert store.saves == 0

    for done in (2, 5, 9):  # the watermark moves: the checkpoint follows it exactly, never ahead
        await source.ack(watermark(source, records[done]))
        document = store.document
        assert document is not None
        assert source.decode_cursor(document["cursor"]) == cursor_after[offsets[done]]

    saves = store.saves
    await source.ack(watermark(source, records[9]))  # the same watermark again: nothing new to save
    assert store.saves == saves
    await source.close()


async def test_a_failed_save_keeps_the_rows_pending(tech: Technology) -> None:
    store = MemoryStore()
    source = tech.make("events", store)
    await source.connect()
    records = await read(source, 6)
    store.failing = True
    with pytest.raises(ConnectionError):
        await source.ack(watermark(source, records[3]))
    store.failing = False
    await source.ack(watermark(source, records[3]))  # the pipeline acknowledges again later
    restarted = tech.make("events", store)
    await restarted.connect()
    assert ids(await read(restarted, 3))[:3] == [5, 6, 7]
    await restarted.close()
    await source.close()


async def test_checkpoint_of_the_previous_version_restores_from_the_configmap(tech: Technology) -> None:
    """An in-place upgrade: the ConfigMap holds the document the old processor wrote after row 6."""
    api = FakeConfigMaps()
    store = ConfigMapCheckpointStore(api, "shop", "orders", min_interval=0)
    source = tech.make("events", store)
    api.put("shop", "dataflow-orders-checkpoint", tech.legacy(source, 6))
    await source.connect()
    assert ids(await read(source, ROWS - 6)) == list(range(7, ROWS + 1))
    records_after = source._inflight[-1][1]
    await source.ack({source.partition: source._next_offset})
    await source.close()
    saved = orjson.loads(api.maps[("shop", "dataflow-orders-checkpoint")]["data"][CONFIGMAP_KEY])
    assert saved["source"] == tech.name  # written back in the new format
    expected = Checkpoint(tech.name, source.identity(), saved["cursor"], saved["savedAt"])
    assert Checkpoint.from_document(saved) == expected
    assert source.decode_cursor(saved["cursor"]) == records_after

    again = tech.make("events", store)
    await again.connect()  # the new format restores too
    assert again.read_cursor == records_after
    await again.close()


def test_legacy_documents_of_another_configuration_do_not_match() -> None:
    """An old identity maps to the new one only for the very same configuration."""
    trino_old = Checkpoint.from_document({"trino": "query|SELECT a|b FROM t|id", "key": 5, "keyType": "bigint"})
    assert trino_old is not None
    assert trino_old.identity == {"table": "query", "query": "SELECT a|b FROM t", "keyColumn": "id"}
    assert trino_old.cursor == {"key": 5, "type": "bigint"}
    assert Checkpoint.from_document({"something": "else"}) is None
    assert Checkpoint.from_document(["not", "a", "document"]) is None


class FakeConfigMaps:
    """The three CoreV1Api calls the ConfigMap store makes, on a dict."""

    def __init__(self) -> None:
        self.maps: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, namespace: str, name: str, document: dict[str, Any]) -> None:
        self.maps[(namespace, name)] = {"data": {CONFIGMAP_KEY: orjson.dumps(document).decode()}}

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        if (namespace, name) not in self.maps:
            raise ApiException(status=404)
        return type("CM", (), {"data": self.maps[(namespace, name)]["data"]})()

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.maps[(namespace, name)]["data"].update(body["data"])

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any]) -> None:
        self.maps[(namespace, body["metadata"]["name"])] = body
