"""Poison records in a stream of good ones (issue #9): the real CLI, Kafka → PostgreSQL (upsert).

1,000 poison records among 5,000 good ones (``RELIABILITY_POISON`` / ``RELIABILITY_GOOD`` to
scale): invalid JSON, a JSON array instead of an object, wrong types (text and out-of-range numbers
for an ``int`` column), deeply nested documents (5,000 levels, past any JSON parser's depth
limit), non-UTF-8 bytes, and a few 5 MB records (a field the table does not have, so the whole
5 MB record goes into its errors envelope). Every poison record must end in the errors table with
its context, every good one in the table, and the processor must never stop (no restart, SIGTERM
exits 0).

Kafka's default maximum message size is ~1 MB (the local broker keeps the default): the topic is
created with ``max.message.bytes`` = 8 MiB and the test's producer allows 8 MiB requests. The
processor's consumer keeps aiokafka's fetch limits (the connector exposes none): the broker still
returns a record batch larger than the fetch limit when it is the first one, so 5 MB records are
read (this test proves it).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import require_env
from tests.integration.conftest import unique
from tests.reliability.harness import (
    Classification,
    Supervisor,
    envelope_has_context,
    envelope_id,
    pg_execute,
    pg_fetch,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

MAX_MESSAGE = 8 * 1024 * 1024
BIG = 5 * 1024 * 1024
BIG_RECORDS = 3
KINDS = ("invalid_json", "array", "wrong_type_text", "wrong_type_range", "deep", "non_utf8")


def poison(i: int, k: int) -> tuple[str, bytes]:
    """The k-th poison record, with id i."""
    if k < BIG_RECORDS:
        return "5mb", orjson.dumps({"id": i, "v": 1, "tag": "big", "blob": "x" * BIG})
    kind = KINDS[k % len(KINDS)]
    if kind == "invalid_json":
        return kind, b'{"id": %d, "v": 1, "tag": "a"' % i
    if kind == "array":
        return kind, b'[{"id": %d, "v": 1}]' % i
    if kind == "wrong_type_text":
        return kind, orjson.dumps({"id": i, "v": "not a number", "tag": "a"})
    if kind == "wrong_type_range":
        return kind, orjson.dumps({"id": i, "v": 2**40, "tag": "a"})
    if kind == "deep":
        return kind, b'{"id": %d, "deep": ' % i + b"[" * 5000 + b"]" * 5000 + b"}"
    return kind, b'{"id": %d, "v": 1, "tag": "\xff\xfe\xc3("}' % i


async def test_poison_records_go_to_errors_and_the_processor_keeps_going(tmp_path: Path) -> None:
    bootstrap, dsn = require_env("DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN")
    good_n = int(os.environ.get("RELIABILITY_GOOD", "5000"))
    poison_n = int(os.environ.get("RELIABILITY_POISON", "1000"))
    total = good_n + poison_n
    every = total // poison_n  # one poison record in every `every` ids
    poison_ids = [i for i in range(total) if i % every == every - 1][:poison_n]
    kinds: dict[int, str] = {}
    topic, table, errors = unique("rp"), unique("rp_main"), unique("rp_err")
    name = unique("poison").replace("_", "-")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE)})])
    finally:
        await admin.close()
    await pg_execute(dsn, f'CREATE TABLE "{table}" (id int PRIMARY KEY, v int, tag text)')
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topic": topic, "consumerGroup": name}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": dsn, "table": table, "upsertMode": True}},
        "errors": {
            "type": "postgresql",
            "postgresql": {"connectionString": dsn, "table": errors, "autoCreateTable": True},
        },
    }
    supervisor = Supervisor(spec, tmp_path, name)
    started = time.monotonic()
    poison_set = set(poison_ids)
    try:
        supervisor.start()
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=MAX_MESSAGE + 1024
        )
        await producer.start()
        try:
            futures = []
            for i in range(total):
                if i in poison_set:
                    kind, value = poison(i, len(kinds))
                    kinds[i] = kind
                else:
                    value = orjson.dumps({"id": i, "v": i % 1000, "tag": "good"})
                futures.append(await producer.send(topic, value, key=b"%d" % i))
                if len(futures) >= 500:
                    await asyncio.gather(*futures)
                    futures = []
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

        async def classify() -> Classification:
            result = Classification(produced=total, expected_errors=poison_set)
            result.written = {r["id"] for r in await pg_fetch(dsn, f'SELECT id FROM "{table}"')}
            try:
                rows = await pg_fetch(dsn, f'SELECT data FROM "{errors}"')
            except Exception as exc:
                if "does not exist" not in str(exc):
                    raise
                rows = []
            for row in rows:
                envelope = json.loads(row["data"])
                i = envelope_id(envelope)
                if i is not None:
                    result.in_errors.add(i)
                if not envelope_has_context(envelope):
                    result.envelopes_without_context += 1
            result.duplicates = {"errors envelopes": len(rows) - len(result.in_errors)}
            return result

        deadline = time.monotonic() + 180
        while True:
            result = await classify()
            if not result.lost or time.monotonic() > deadline or not supervisor.processor.alive():
                break
            await asyncio.sleep(2)
        alive = supervisor.processor.alive()
        code = await supervisor.stop()
        by_kind: dict[str, dict[str, int]] = {}
        for i, kind in kinds.items():
            counts = by_kind.setdefault(kind, {"produced": 0, "in_errors": 0, "written": 0})
            counts["produced"] += 1
            counts["in_errors"] += i in result.in_errors
            counts["written"] += i in result.written
        result.print(
            "poison records",
            {
                "good": good_n,
                "poison": len(poison_ids),
                "by_kind": by_kind,
                "crash_restarts": supervisor.crash_restarts,
                "peak_rss_mib": round(supervisor.peak_rss_kib / 1024, 1),
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        assert alive and supervisor.crash_restarts == 0, supervisor.logs()[-8000:]
        assert code == 0, supervisor.logs()[-8000:]
        assert not result.lost, sorted(result.lost)[:50]
        assert not result.missing_expected_errors, {kinds[i] for i in result.missing_expected_errors}
        assert not result.unexpected_errors, sorted(result.unexpected_errors)[:50]
        assert not (result.written & poison_set), sorted(result.written & poison_set)[:50]
        assert result.envelopes_without_context == 0
        assert all(c["in_errors"] == c["produced"] for c in by_kind.values()), by_kind
    finally:
        supervisor.kill()
        for name_ in (table, errors):
            await pg_execute(dsn, f'DROP TABLE IF EXISTS "{name_}"')
