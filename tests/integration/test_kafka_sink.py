"""Kafka sink against the real Kafka: batched idempotent produce (acks=all), keys from metadata,
per-record refusals to the errors sink, and Kafka as the errors sink of a Kafka → PostgreSQL flow."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.kafka import KafkaSink
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.records import Position, Record
from dataflow_processor.spec.connectors import KafkaSinkConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import FAST, count_rows, produce, read_topic, run_until, unique

pytestmark = pytest.mark.integration


def make_sink(bootstrap: str, topic: str) -> KafkaSink:
    config = KafkaSinkConfig.model_validate({"brokers": [bootstrap], "topic": topic})
    return KafkaSink(config, ConnectorContext("it", "kafka", "sink"))


async def test_batched_idempotent_produce_with_keys(bootstrap: str, topic: str) -> None:
    records: list[Any] = [
        Record(raw=orjson.dumps({"i": i}), metadata={"key": f"k{i % 5}" if i % 2 else ""}, position=Position(0, i))
        for i in range(500)
    ]
    sink = make_sink(bootstrap, topic)
    pipeline = Pipeline(source=MemorySource(records), chain=TransformChain.from_spec([]), sink=sink, settings=FAST)
    await pipeline.run()
    got = await read_topic(bootstrap, topic, 500)
    assert sorted(orjson.loads(m.value)["i"] for m in got) == list(range(500))
    keys = {orjson.loads(m.value)["i"]: m.key for m in got}
    assert keys[3] == b"k3" and keys[4] is None  # empty key → no key
    # same key → same partition
    by_key: dict[bytes, set[int]] = {}
    for m in got:
        if m.key is not None:
            by_key.setdefault(m.key, set()).add(m.partition)
    assert all(len(parts) == 1 for parts in by_key.values())


async def test_producer_settings(bootstrap: str, topic: str) -> None:
    sink = make_sink(bootstrap, topic)
    await sink.connect()
    try:
        producer = sink.producer
        assert producer is not None
        assert producer._txn_manager is not None  # idempotence on (aiokafka keeps a producer id manager)
        assert producer.client._client_id == "dataflow-operator"
        assert producer._sender._acks == -1  # acks=all
    finally:
        await sink.close()


async def test_oversized_record_goes_to_errors_sink_alone(bootstrap: str, topic: str) -> None:
    values: list[Any] = [{"i": 0}, {"i": 1, "blob": "x" * 2_000_000}, {"i": 2}]
    errors = MemorySink()
    pipeline = Pipeline(
        source=MemorySource(values),
        chain=TransformChain.from_spec([]),
        sink=make_sink(bootstrap, topic),
        errors_sink=errors,
        settings=FAST,
    )
    await pipeline.run()
    got = await read_topic(bootstrap, topic, 2)
    assert sorted(orjson.loads(m.value)["i"] for m in got) == [0, 2]
    assert [e.value["original_message"]["i"] for e in errors.records] == [1]  # type: ignore[index]
    assert "refused" in errors.records[0].value["error"]["message"]  # type: ignore[index]


async def test_kafka_to_postgresql_with_kafka_errors_topic(
    bootstrap: str, topic: str, pg: asyncpg.Connection, pg_dsn: str, table: str
) -> None:
    await pg.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, name text NOT NULL)')
    errors_topic = unique("it_dlq")
    messages: list[Any] = [(b"k%d" % i, {"id": i, "name": f"n{i}"}) for i in range(200)]
    messages[50] = (b"bad-json", b"{oops")
    messages[120] = (b"dup", {"id": 7, "name": "dup"})  # constraint violation mid-batch
    messages[130] = (b"null", {"id": 130, "name": None})
    await produce(bootstrap, topic, messages, partition=0)
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": unique("g")}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": pg_dsn, "table": table}},
        "errors": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": errors_topic}},
    }

    async def all_written() -> bool:
        return await count_rows(pg, table) == 197

    await run_until(spec, all_written)
    ids = [r["id"] for r in await pg.fetch(f'SELECT id FROM "{table}" ORDER BY id')]
    assert ids == sorted(set(range(200)) - {50, 120, 130})
    dead = await read_topic(bootstrap, errors_topic, 3)
    envelopes = {m.key: orjson.loads(m.value) for m in dead}
    assert set(envelopes) == {b"bad-json", b"dup", b"null"}  # the original keys are kept
    assert envelopes[b"bad-json"]["error"]["stage"] == "parse"
    assert envelopes[b"bad-json"]["original_message"] == {"original_data": "{oops"}
    assert envelopes[b"dup"]["error"]["stage"] == "write"
    assert "23505" in envelopes[b"dup"]["error"]["message"]
    assert envelopes[b"dup"]["error"]["original_sink"] == "postgresql"
    assert envelopes[b"null"]["original_message"] == {"id": 130, "name": None}
