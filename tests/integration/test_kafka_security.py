"""Kafka TLS and SASL against the real broker's SSL and SASL_PLAINTEXT listeners, source and sink:
CA + client certificate from files and inline PEM, insecureSkipVerify, PLAIN / SCRAM-SHA-256 /
SCRAM-SHA-512, an explicit securityProtocol, and failures for a wrong password or an untrusted
broker certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaError
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.kafka import KafkaSink, KafkaSource, client_options
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.spec.connectors import KafkaSinkConfig, KafkaSourceConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.conftest import KafkaSASL, KafkaTLS
from tests.integration.conftest import FAST, create_topic, unique

pytestmark = pytest.mark.integration


async def roundtrip(bootstrap: str, security: dict[str, Any], plain_bootstrap: str, n: int = 50) -> list[int]:
    """Write n records with the Kafka sink and read them back with the Kafka source, both secured."""
    topic = unique("it_sec")
    await create_topic(plain_bootstrap, topic, partitions=2)
    sink_config = KafkaSinkConfig.model_validate({"brokers": [bootstrap], "topic": topic, **security})
    sink = KafkaSink(sink_config, ConnectorContext("it", "sec", "sink"))
    await Pipeline(
        source=MemorySource([{"i": i} for i in range(n)]), chain=TransformChain.from_spec([]), sink=sink, settings=FAST
    ).run()

    source_config = KafkaSourceConfig.model_validate(
        {"brokers": [bootstrap], "topic": topic, "consumerGroup": unique("g"), **security}
    )
    got = MemorySink()
    pipeline = Pipeline(
        source=KafkaSource(source_config, ConnectorContext("it", "sec", "source")),
        chain=TransformChain.from_spec([]),
        sink=got,
        settings=FAST,
    )
    task = asyncio.create_task(pipeline.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(got.records) < n and loop.time() < deadline and not task.done():
        await asyncio.sleep(0.05)
    pipeline.stop()
    await asyncio.wait_for(task, 30)
    return sorted(r.value["i"] for r in got.records)  # type: ignore[index]


async def test_tls_with_ca_and_client_certificate_files(kafka_tls: KafkaTLS, kafka_bootstrap: str) -> None:
    tls = {"caFile": kafka_tls.ca, "certFile": kafka_tls.cert, "keyFile": kafka_tls.key}
    assert await roundtrip(kafka_tls.bootstrap, {"tls": tls}, kafka_bootstrap) == list(range(50))


async def test_tls_with_inline_pem(kafka_tls: KafkaTLS, kafka_bootstrap: str) -> None:
    tls = {
        "ca": Path(kafka_tls.ca).read_text(),
        "cert": Path(kafka_tls.cert).read_text(),
        "key": Path(kafka_tls.key).read_text(),
    }
    assert await roundtrip(kafka_tls.bootstrap, {"tls": tls}, kafka_bootstrap) == list(range(50))


async def test_tls_insecure_skip_verify(kafka_tls: KafkaTLS, kafka_bootstrap: str) -> None:
    tls = {"insecureSkipVerify": True}
    assert await roundtrip(kafka_tls.bootstrap, {"tls": tls}, kafka_bootstrap) == list(range(50))


async def test_tls_untrusted_broker_is_refused(kafka_tls: KafkaTLS) -> None:
    config = KafkaSinkConfig.model_validate({"brokers": [kafka_tls.bootstrap], "topic": "x", "tls": {}})
    sink = KafkaSink(config, ConnectorContext("it", "sec", "sink"))  # system roots do not know the test CA
    with pytest.raises(KafkaError):
        await sink.connect()
    await sink.close()


async def test_security_protocol_ssl_without_tls_uses_the_system_ca_bundle(
    kafka_tls: KafkaTLS, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`securityProtocol: SSL` and no `tls` block: TLS, the broker verified against the system's CA
    bundle (here the test CA, through SSL_CERT_FILE, as an image's trust store would hold it)."""
    monkeypatch.setenv("SSL_CERT_FILE", kafka_tls.ca)
    assert await roundtrip(kafka_tls.bootstrap, {"securityProtocol": "SSL"}, kafka_bootstrap) == list(range(50))


async def test_security_protocol_sasl_plaintext_chosen_explicitly(kafka_sasl: KafkaSASL, kafka_bootstrap: str) -> None:
    security = {
        "securityProtocol": "SASL_PLAINTEXT",
        "sasl": {"mechanism": "scram-sha-512", "username": kafka_sasl.user, "password": kafka_sasl.password},
    }
    assert await roundtrip(kafka_sasl.bootstrap, security, kafka_bootstrap, n=20) == list(range(20))


@pytest.mark.parametrize("mechanism", ["plain", "scram-sha-256", "scram-sha-512"])
async def test_sasl_mechanisms(mechanism: str, kafka_sasl: KafkaSASL, kafka_bootstrap: str) -> None:
    sasl = {"mechanism": mechanism, "username": kafka_sasl.user, "password": kafka_sasl.password}
    assert await roundtrip(kafka_sasl.bootstrap, {"sasl": sasl}, kafka_bootstrap, n=20) == list(range(20))


async def test_sasl_wrong_password_fails_to_connect(kafka_sasl: KafkaSASL) -> None:
    sasl = {"mechanism": "scram-sha-512", "username": kafka_sasl.user, "password": "wrong"}
    config = KafkaSinkConfig.model_validate({"brokers": [kafka_sasl.bootstrap], "topic": "x", "sasl": sasl})
    sink = KafkaSink(config, ConnectorContext("it", "sec", "sink"))
    with pytest.raises(KafkaError):
        await sink.connect()
    await sink.close()


def test_security_protocol_choice() -> None:
    sasl = orjson.loads(b'{"mechanism": "SCRAM-SHA-256", "username": "u", "password": "p"}')
    config = KafkaSinkConfig.model_validate({"brokers": ["h:1"], "topic": "t", "sasl": sasl})
    options = client_options(config.brokers, config.tls, config.sasl)
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    config = KafkaSinkConfig.model_validate(
        {"brokers": ["h:1"], "topic": "t", "sasl": sasl, "tls": {"insecureSkipVerify": True}}
    )
    assert client_options(config.brokers, config.tls, config.sasl)["security_protocol"] == "SASL_SSL"
