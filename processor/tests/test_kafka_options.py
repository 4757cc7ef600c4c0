"""The Kafka client's security options: `securityProtocol` chosen explicitly or implied by tls/sasl."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from pydantic import ValidationError

from dataflow_processor.connectors.kafka import client_options
from dataflow_processor.spec.connectors import KafkaSinkConfig, KafkaSourceConfig

BASE = {"brokers": ["h:9092"], "topic": "t"}
SASL = {"mechanism": "scram-sha-256", "username": "u", "password": "p"}


def options(**fields: Any) -> dict[str, Any]:
    config = KafkaSinkConfig.model_validate({**BASE, **fields})
    return client_options(config.brokers, config.tls, config.sasl, config.security_protocol)


def test_without_security_protocol_tls_and_sasl_imply_it() -> None:
    assert "security_protocol" not in options()
    assert "ssl_context" not in options()
    assert options(tls={})["security_protocol"] == "SSL"
    assert options(sasl=SASL)["security_protocol"] == "SASL_PLAINTEXT"
    assert options(sasl=SASL, tls={})["security_protocol"] == "SASL_SSL"


def test_a_tls_protocol_without_a_tls_block_verifies_against_the_system_bundle() -> None:
    chosen = options(securityProtocol="SSL")
    assert chosen["security_protocol"] == "SSL"
    context = chosen["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with_sasl = options(securityProtocol="SASL_SSL", sasl=SASL)
    assert with_sasl["security_protocol"] == "SASL_SSL"
    assert isinstance(with_sasl["ssl_context"], ssl.SSLContext)
    assert with_sasl["sasl_mechanism"] == "SCRAM-SHA-256"


def test_plaintext_chosen_explicitly_is_plaintext() -> None:
    assert "ssl_context" not in options(securityProtocol="PLAINTEXT")
    assert options(securityProtocol="SASL_PLAINTEXT", sasl=SASL)["security_protocol"] == "SASL_PLAINTEXT"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"securityProtocol": "SASL_SSL"}, "SASL_PLAINTEXT and SASL_SSL need sasl"),
        ({"securityProtocol": "SSL", "sasl": SASL}, "PLAINTEXT and SSL take none"),
        ({"securityProtocol": "PLAINTEXT", "tls": {}}, "tls is set, so the protocol is SSL or SASL_SSL"),
        ({"securityProtocol": "TLS"}, "Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
    ],
)
def test_contradicting_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    for model in (KafkaSourceConfig, KafkaSinkConfig):
        with pytest.raises(ValidationError, match=message):
            model.model_validate({**BASE, **fields})
