"""Kafka source against the real Kafka: consumer group from the earliest offset, record metadata,
explicit commits of the pipeline's watermark, resume after a restart, undecodable records to the
errors sink, rawMode, pausing while downstream is full, and flush + commit on partition revocation."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.kafka import KafkaSource
from dataflow_processor.connectors.memory import MemorySink
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec.connectors import KafkaSourceConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import FAST, committed_offsets, produce, unique

pytestmark = pytest.mark.integration


def make_source(bootstrap: str, topic: str, **extra: Any) -> KafkaSource:
    config = KafkaSourceConfig.model_validate({"brokers": [bootstrap], "topic": topic, **extra})
    return KafkaSource(config, ConnectorContext("it", "kafka", "source"))


class Flow:
    """A running pipeline: Kafka source → memory sink (+ memory errors sink)."""

    def __init__(self, source: KafkaSource, sink: MemorySink | None = None, settings: PipelineSettings = FAST) -> None:
        self.source = source
        self.sink = sink or MemorySink()
        self.errors = MemorySink()
        self.pipeline = Pipeline(
            source=source,
            chain=TransformChain.from_spec([]),
            sink=self.sink,
            errors_sink=self.errors,
            settings=settings,
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Flow:
        self.task = asyncio.create_task(self.pipeline.run())
        return self

    async def wait(self, count: int, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.sink.records) + len(self.errors.records) < count:
            assert self.task is not None
            if self.task.done():
                await self.task
            if loop.time() > deadline:
                raise AssertionError(f"{len(self.sink.records)}+{len(self.errors.records)} of {count} arrived")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.pipeline.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 40)


async def test_reads_from_earliest_with_metadata_and_commits_watermark(bootstrap: str, topic: str) -> None:
    await produce(bootstrap, topic, [(b"k%d" % i, {"i": i}) for i in range(400)])
    await produce(bootstrap, topic, [{"i": 400}], partition=2)
    flow = Flow(make_source(bootstrap, topic, consumerGroup=unique("g"))).start()
    await flow.wait(401)
    await flow.stop()
    assert sorted(r.value["i"] for r in flow.sink.records) == list(range(401))  # type: ignore[index]
    keyed = next(r for r in flow.sink.records if r.value == {"i": 7})
    assert set(keyed.metadata) == {"topic", "partition", "offset", "key", "timestamp", "headers"}
    assert keyed.metadata["topic"] == topic and keyed.metadata["key"] == "k7"
    assert isinstance(keyed.metadata["timestamp"], int) and keyed.metadata["headers"] == {}
    unkeyed = next(r for r in flow.sink.records if r.value == {"i": 400})
    assert unkeyed.metadata["key"] == "" and unkeyed.metadata["partition"] == 2
    # committed offsets = end of every partition (the final watermark)
    ends = Counter(r.metadata["partition"] for r in flow.sink.records)
    group = flow.source.config.consumer_group
    assert await committed_offsets(bootstrap, topic, group or "") == {p: ends.get(p) for p in range(4)}


async def test_default_group_and_resume_after_restart(bootstrap: str, topic: str) -> None:
    await produce(bootstrap, topic, [{"i": i} for i in range(100)])
    first = Flow(make_source(bootstrap, topic)).start()
    await first.wait(100)
    await first.stop()
    assert first.source.config.consumer_group == "dataflow-operator"
    await produce(bootstrap, topic, [{"i": i} for i in range(100, 150)])
    second = Flow(make_source(bootstrap, topic)).start()
    await second.wait(50)
    await asyncio.sleep(1.0)  # nothing else may come
    await second.stop()
    assert sorted(r.value["i"] for r in second.sink.records) == list(range(100, 150))  # type: ignore[index]


async def test_undecodable_records_go_to_errors_sink_and_are_committed(bootstrap: str, topic: str) -> None:
    good = [{"i": i} for i in range(20)]
    bad: list[Any] = [b"{not json", b"[1, 2]", b"\xff\xfe"]
    await produce(bootstrap, topic, [*good[:10], *bad, *good[10:]], partition=1)
    group = unique("g")
    flow = Flow(make_source(bootstrap, topic, consumerGroup=group)).start()
    await flow.wait(23)
    await flow.stop()
    assert [r.value["i"] for r in flow.sink.records] == list(range(20))  # type: ignore[index]
    envelopes = [e.value for e in flow.errors.records]
    assert [e["error"]["stage"] for e in envelopes] == ["parse"] * 3  # type: ignore[index]
    assert [e["original_message"] for e in envelopes] == [  # type: ignore[index]
        {"original_data": "{not json"},
        {"original_data": "[1, 2]"},
        {"original_data": "\ufffd\ufffd"},
    ]
    assert [e["error"]["metadata"]["offset"] for e in envelopes] == [10, 11, 12]  # type: ignore[index]
    assert (await committed_offsets(bootstrap, topic, group))[1] == 23


async def test_raw_mode_wraps_payload_and_metadata(bootstrap: str, topic: str) -> None:
    await produce(bootstrap, topic, [(b"key", {"a": 1}), (None, b"plain text")], partition=0)
    flow = Flow(make_source(bootstrap, topic, consumerGroup=unique("g"), rawMode=True)).start()
    await flow.wait(2)
    await flow.stop()
    first, second = (r.value for r in flow.sink.records)
    assert first["value"] == {"a": 1} and second["value"] == "plain text"  # type: ignore[index]
    meta = first["_metadata"]  # type: ignore[index]
    assert set(meta) == {"offset", "partition", "timestamp", "key", "topic"}
    assert (meta["offset"], meta["partition"], meta["key"], meta["topic"]) == (0, 0, "key", topic)
    assert flow.errors.records == []


async def test_partitions_paused_while_downstream_is_full(bootstrap: str, topic: str) -> None:
    await produce(bootstrap, topic, [{"i": i} for i in range(600)])
    slow = MemorySink(delay=0.3)
    settings = PipelineSettings(batch_size=20, linger_seconds=0.01, queue_size=1, commit_interval=0.1)
    flow = Flow(make_source(bootstrap, topic, consumerGroup=unique("g")), slow, settings).start()
    paused_seen = False
    for _ in range(100):
        await asyncio.sleep(0.05)
        consumer = flow.source.consumer
        if consumer is not None and consumer.paused():
            paused_seen = True
            break
    await flow.stop()
    assert paused_seen, "the consumer never paused although the sink was slow"
    # whatever was read was written and committed; the rest stays for the next run
    written = len(slow.records)
    committed = await committed_offsets(bootstrap, topic, flow.source.config.consumer_group or "")
    assert sum(v or 0 for v in committed.values()) == written


async def test_revocation_flushes_and_commits_before_handing_over(bootstrap: str, topic: str) -> None:
    group = unique("g")
    total = 3000
    first = Flow(make_source(bootstrap, topic, consumerGroup=group)).start()
    await produce(bootstrap, topic, [{"i": i} for i in range(total // 2)])
    await first.wait(200)
    second = Flow(make_source(bootstrap, topic, consumerGroup=group)).start()  # rebalance: first loses some
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not (second.source.consumer and second.source.consumer.assignment()):
        assert loop.time() < deadline, "the second consumer never joined"
        await asyncio.sleep(0.1)
    await produce(bootstrap, topic, [{"i": i} for i in range(total // 2, total)])
    deadline = loop.time() + 60
    while len({r.value["i"] for r in first.sink.records + second.sink.records}) < total:  # type: ignore[index]
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    await second.stop()
    await first.stop()
    seen = Counter(r.value["i"] for r in first.sink.records + second.sink.records)  # type: ignore[index]
    assert set(seen) == set(range(total))
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates == 0, f"{duplicates} records were read twice across the rebalance"
    assert second.sink.records, "the second consumer got no partition"
