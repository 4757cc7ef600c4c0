"""Kafka source with ``format: avro`` against the real Kafka: a static schema (inline and file), and
Confluent's wire format with a schema registry — a tiny real HTTP server in the test that serves
``GET /schemas/ids/{id}`` behind basic auth. Payloads are real Avro bytes from fastavro; ones that
do not decode (garbage, unknown schema id) go to the errors sink and their offsets are committed."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from aiohttp import web
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.kafka import KafkaSource
from dataflow_processor.connectors.memory import MemorySink
from dataflow_processor.pipeline import Pipeline
from dataflow_processor.spec.connectors import KafkaSourceConfig
from dataflow_processor.transforms.chain import TransformChain

from tests.integration.conftest import FAST, committed_offsets, produce, unique

pytestmark = pytest.mark.integration

ORDER = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "status", "type": "string"},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "raw", "type": "bytes"},
    ],
}
CUSTOMER = {
    "type": "record",
    "name": "Customer",
    "fields": [{"name": "name", "type": "string"}, {"name": "vip", "type": "boolean"}],
}


def avro(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


def wire(schema_id: int, schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + avro(schema, value)


def order(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "status": "paid" if i % 2 else "new",
        "amount": i * 1.5 if i % 3 else None,
        "tags": ["a"],
        "raw": b"\x01",
    }


def order_json(i: int) -> dict[str, Any]:
    return {**order(i), "raw": base64.b64encode(b"\x01").decode()}


async def consume(bootstrap: str, topic: str, expected: int, **config: Any) -> tuple[MemorySink, MemorySink, str]:
    group = unique("g")
    settings = {"brokers": [bootstrap], "topic": topic, "consumerGroup": group, "format": "avro", **config}
    source = KafkaSource(KafkaSourceConfig.model_validate(settings), ConnectorContext("it", "avro", "source"))
    sink, errors = MemorySink(), MemorySink()
    pipeline = Pipeline(source=source, chain=TransformChain.from_spec([]), sink=sink, errors_sink=errors, settings=FAST)
    task = asyncio.create_task(pipeline.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(sink.records) + len(errors.records) < expected and loop.time() < deadline and not task.done():
        await asyncio.sleep(0.05)
    pipeline.stop()
    await asyncio.wait_for(task, 30)
    return sink, errors, group


async def test_static_schema_inline_and_bad_payload(bootstrap: str, topic: str) -> None:
    payloads = [avro(ORDER, order(i)) for i in range(30)]
    payloads.insert(10, b"\x02garbage")
    await produce(bootstrap, topic, payloads, partition=0)
    sink, errors, group = await consume(bootstrap, topic, 31, avroSchema=json.dumps(ORDER))
    assert [r.value for r in sink.records] == [order_json(i) for i in range(30)]
    assert len(errors.records) == 1
    envelope = errors.records[0].value
    assert envelope["error"]["stage"] == "parse"  # type: ignore[index]
    assert envelope["error"]["message"].startswith("invalid Avro data")  # type: ignore[index]
    assert envelope["error"]["metadata"]["offset"] == 10  # type: ignore[index]
    assert (await committed_offsets(bootstrap, topic, group))[0] == 31


async def test_static_schema_from_file(bootstrap: str, topic: str, tmp_path: Path) -> None:
    schema_file = tmp_path / "order.avsc"
    schema_file.write_text(json.dumps(ORDER))
    await produce(bootstrap, topic, [avro(ORDER, order(i)) for i in range(5)], partition=0)
    sink, errors, _ = await consume(bootstrap, topic, 5, avroSchemaFile=str(schema_file))
    assert [r.value for r in sink.records] == [order_json(i) for i in range(5)] and errors.records == []


class Registry:
    """Confluent's ``GET /schemas/ids/{id}`` with basic auth, on 127.0.0.1 (a real HTTP server)."""

    def __init__(self, schemas: dict[int, dict[str, Any]], user: str, password: str) -> None:
        self.schemas = schemas
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests: list[tuple[str, bool]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        authorized = request.headers.get("Authorization") == self.expected
        self.requests.append((request.path, authorized))
        if not authorized:
            return web.json_response({"error_code": 40101, "message": "Unauthorized"}, status=401)
        schema = self.schemas.get(int(request.match_info["id"]))
        if schema is None:
            return web.json_response({"error_code": 40403, "message": "Schema not found"}, status=404)
        return web.json_response({"schema": json.dumps(schema)})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/schemas/ids/{id}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    server = Registry({1: ORDER, 2: CUSTOMER}, "reg-user", "reg-pass")
    await server.start()
    yield server
    await server.stop()


async def test_schema_registry_wire_format_with_basic_auth(bootstrap: str, topic: str, registry: Registry) -> None:
    payloads = []
    for i in range(40):
        payloads.append(wire(1, ORDER, order(i)) if i % 4 else wire(2, CUSTOMER, {"name": f"c{i}", "vip": True}))
    payloads.insert(5, wire(99, ORDER, order(0)))  # unknown schema id
    payloads.insert(6, b"\x00\x00\x00\x00\x01\xff\xff")  # id 1, truncated body
    await produce(bootstrap, topic, payloads, partition=0)
    registry_config = {"url": registry.url, "basicAuth": {"username": "reg-user", "password": "reg-pass"}}
    sink, errors, group = await consume(bootstrap, topic, 42, schemaRegistry=registry_config)
    expected = [order_json(i) if i % 4 else {"name": f"c{i}", "vip": True} for i in range(40)]
    assert [r.value for r in sink.records] == expected
    messages = [e.value["error"]["message"] for e in errors.records]  # type: ignore[index]
    assert messages[0] == "schema id 99 not found in the registry"
    assert messages[1].startswith("invalid Avro data")
    assert (await committed_offsets(bootstrap, topic, group))[0] == 42
    # every request authenticated; each schema id fetched once (cached)
    assert sorted(registry.requests) == [
        ("/schemas/ids/1", True),
        ("/schemas/ids/2", True),
        ("/schemas/ids/99", True),
    ]


async def test_registry_with_static_fallback_and_raw_mode(bootstrap: str, topic: str, registry: Registry) -> None:
    await produce(
        bootstrap, topic, [(b"k1", wire(2, CUSTOMER, {"name": "x", "vip": False})), (None, avro(ORDER, order(3)))], 0
    )
    registry_config = {"url": registry.url, "basicAuth": {"username": "reg-user", "password": "reg-pass"}}
    sink, errors, _ = await consume(
        bootstrap, topic, 2, schemaRegistry=registry_config, avroSchema=json.dumps(ORDER), rawMode=True
    )
    assert errors.records == []
    first, second = (r.value for r in sink.records)
    assert first["value"] == {"name": "x", "vip": False} and first["_metadata"]["key"] == "k1"  # type: ignore[index]
    assert second["value"] == order_json(3) and second["_metadata"]["offset"] == 1  # type: ignore[index]
