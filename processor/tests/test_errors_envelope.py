"""The errors envelope is a plain JSON document.

Regression (found by the reliability harness, tests/reliability/test_kill_kafka_pg.py): a Kafka
record without headers carries ``headers = EMPTY_METADATA`` (a ``MappingProxyType``); the envelope
copied it as is, and a PostgreSQL errors sink (document layout, orjson without a default) refused
every envelope ("Type is not JSON serializable: mappingproxy"), so every failed record was only
logged instead of reaching the errors table.
"""

from __future__ import annotations

from types import MappingProxyType

import orjson

from dataflow_processor.errors_envelope import build_envelope
from dataflow_processor.records import EMPTY_METADATA, Position, Record


def test_envelope_of_a_kafka_record_without_headers_serializes_without_a_default() -> None:
    record = Record(
        None,
        raw=b'{"id": 7,',
        metadata=MappingProxyType(
            {"topic": "t", "partition": 0, "offset": 3, "key": "7", "headers": EMPTY_METADATA,
             "nested": MappingProxyType({"a": MappingProxyType({"b": 1})})}
        ),
        position=Position(0, 3),
    )
    envelope = build_envelope(record, message="invalid JSON", stage="parse", namespace="ns", name="n")
    document = orjson.loads(orjson.dumps(envelope.value))  # no default= : what the PostgreSQL sink does
    assert document["error"]["metadata"]["headers"] == {}
    assert document["error"]["metadata"]["nested"] == {"a": {"b": 1}}
    assert document["error"]["position"] == {"partition": 0, "offset": 3}
    assert document["original_message"] == {"original_data": '{"id": 7,'}
    orjson.dumps(dict(envelope.metadata))
