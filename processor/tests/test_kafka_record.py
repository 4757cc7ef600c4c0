"""KafkaRecord: the Kafka source's record builds its metadata dict only when something reads it."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from dataflow_processor.connectors.kafka import KafkaRecord, message_metadata
from dataflow_processor.errors_envelope import build_envelope
from dataflow_processor.records import EMPTY_METADATA, Position


def message(key: bytes | None = b"k1", headers: tuple[tuple[str, bytes | None], ...] = ()) -> ConsumerRecord:
    return ConsumerRecord("orders", 3, 42, 1700000000000, 0, key, b'{"a": 1}', None, 2, 8, headers)


def test_metadata_is_built_from_the_message_on_first_read() -> None:
    record = KafkaRecord(message(headers=(("h", b"v"), ("n", None))), Position(3, 42))
    assert record.value is None and record.raw == b'{"a": 1}' and record.position == Position(3, 42)
    assert record.token is None and record.ack_index == 0 and record.route is None
    metadata = record.metadata
    assert metadata == {
        "topic": "orders",
        "partition": 3,
        "offset": 42,
        "key": "k1",
        "timestamp": 1700000000000,
        "headers": {"h": "v", "n": None},
    }
    assert record.metadata is metadata  # built once
    assert message_metadata(message(key=None))["key"] == ""
    assert message_metadata(message())["headers"] is EMPTY_METADATA


def test_metadata_can_be_replaced_and_is_shared_by_children_and_envelopes() -> None:
    record = KafkaRecord(message(), Position(3, 42))
    child = record.child({"x": 1})
    assert child.metadata["key"] == "k1" and child.position == record.position
    record.metadata = {**record.metadata, "extra": True}
    assert record.metadata["extra"] is True
    envelope = build_envelope(record, message="bad", stage="parse", namespace="n", name="f")
    assert envelope.value is not None and envelope.value["error"]["metadata"]["key"] == "k1"
    assert envelope.value["error"]["position"] == {"partition": 3, "offset": 42}
