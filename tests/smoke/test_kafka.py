"""Smoke test of the local Kafka (KRaft): produce and consume through PLAINTEXT, SSL and SASL_PLAINTEXT."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from tests.conftest import KafkaSASL, KafkaTLS

pytestmark = pytest.mark.smoke


def topic_name(kind: str) -> str:
    return f"smoke-{kind}-{uuid.uuid4().hex[:10]}"


async def roundtrip(n: int, topic: str, **conn: Any) -> list[tuple[bytes | None, bytes | None, int]]:
    """Produce n keyed records, then read them all back from the beginning with a consumer group."""
    producer = AIOKafkaProducer(acks="all", linger_ms=5, request_timeout_ms=30000, **conn)
    await producer.start()
    try:
        batch = [producer.send(topic, key=b"k%d" % (i % 16), value=b"v%d" % i) for i in range(n)]
        for fut in batch:
            await fut
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        group_id=f"{topic}-g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **conn,
    )
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        while len(got) < n:
            batches = await consumer.getmany(timeout_ms=20000)
            if not batches:
                break
            for records in batches.values():
                got.extend((r.key, r.value, r.partition) for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def test_plaintext_1000_records(kafka_bootstrap: str) -> None:
    topic = topic_name("plain")
    got = await roundtrip(1000, topic, bootstrap_servers=kafka_bootstrap)
    assert sorted(v for _, v, _ in got if v is not None) == sorted(b"v%d" % i for i in range(1000))
    assert len(got) == 1000
    # auto-created with num.partitions=4; one key always lands on one partition
    assert {p for _, _, p in got} <= {0, 1, 2, 3}
    assert len({p for _, _, p in got}) > 1
    by_key: dict[bytes | None, set[int]] = {}
    for k, _, p in got:
        by_key.setdefault(k, set()).add(p)
    assert all(len(ps) == 1 for ps in by_key.values())
    # the consumer group committed its position: a new consumer in the group sees nothing more
    consumer = AIOKafkaConsumer(topic, group_id=f"{topic}-g", bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        assert not await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()


async def test_tls_with_client_certificate(kafka_tls: KafkaTLS) -> None:
    bootstrap = kafka_tls.bootstrap
    ctx = create_ssl_context(cafile=kafka_tls.ca, certfile=kafka_tls.cert, keyfile=kafka_tls.key)
    got = await roundtrip(50, topic_name("tls"), bootstrap_servers=bootstrap, security_protocol="SSL", ssl_context=ctx)
    assert sorted(v for _, v, _ in got if v is not None) == sorted(b"v%d" % i for i in range(50))


async def test_tls_without_client_certificate(kafka_tls: KafkaTLS) -> None:
    """ssl.client.auth=requested: a client that only trusts the CA is accepted too."""
    bootstrap = kafka_tls.bootstrap
    ctx = create_ssl_context(cafile=kafka_tls.ca)
    got = await roundtrip(
        5, topic_name("tls-nocert"), bootstrap_servers=bootstrap, security_protocol="SSL", ssl_context=ctx
    )
    assert len(got) == 5


async def test_tls_rejects_untrusted_server(kafka_tls: KafkaTLS, caplog: pytest.LogCaptureFixture) -> None:
    """The server certificate chains to the test CA only: the system trust store refuses it."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_tls.bootstrap, security_protocol="SSL", ssl_context=ssl.create_default_context()
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_sasl(kafka_sasl: KafkaSASL, mechanism: str) -> None:
    bootstrap, user, password = kafka_sasl.bootstrap, kafka_sasl.user, kafka_sasl.password
    got = await roundtrip(
        50,
        topic_name(mechanism.lower()),
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    assert sorted(v for _, v, _ in got if v is not None) == sorted(b"v%d" % i for i in range(50))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_sasl_wrong_password_is_refused(
    kafka_sasl: KafkaSASL, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap, user = kafka_sasl.bootstrap, kafka_sasl.user
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password="wrong",
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text
