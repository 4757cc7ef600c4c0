"""Avro payloads of the Kafka source: a static schema, or Confluent's wire format with a registry.

A payload whose byte 0 is ``0x00`` and that is longer than 5 bytes is in Confluent's wire format:
bytes 1 to 4 are the big-endian schema id, fetched once per id from ``GET {url}/schemas/ids/{id}``
(basic auth if configured) and cached. Any other payload is decoded with the static schema
(``avroSchema`` / ``avroSchemaFile``), if there is one. Values become JSON: bytes/fixed as base64
(what the original's Go JSON encoding produced), decimals as numbers, timestamps, dates and UUIDs
as ISO-8601 / canonical strings. Unions come out unwrapped (the original unwrapped goavro's
``{"type": value}`` maps by hand).

:class:`AvroDecodeError` is a bad record (→ errors sink); a registry that cannot be reached raises
:class:`RegistryUnavailable`, which the source retries without skipping anything. An unknown id
(HTTP 404) is a bad record.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import logging
import ssl
import uuid
from typing import Any

import aiohttp
import fastavro
import orjson

log = logging.getLogger("dataflow_processor.connectors.avro")

WIRE_MAGIC = 0


class AvroDecodeError(ValueError):
    """This payload cannot be decoded (permanent for the record)."""


class RegistryUnavailable(ConnectionError):
    """The schema registry did not answer; retry later."""


def parse_schema(text: str) -> Any:
    try:
        return fastavro.parse_schema(orjson.loads(text))
    except Exception as exc:
        raise ValueError(f"invalid Avro schema: {exc}") from exc


def to_json(value: Any) -> Any:
    """A fastavro value as a JSON-compatible value."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


class SchemaRegistryClient:
    """Confluent API subset: ``GET /schemas/ids/{id}`` → ``{"schema": "<Avro schema JSON>"}``."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = {}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.ssl_context = ssl_context
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._schemas: dict[int, Any] = {}
        self._session: aiohttp.ClientSession | None = None

    async def schema(self, schema_id: int) -> Any:
        parsed = self._schemas.get(schema_id)
        if parsed is not None:
            return parsed
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        try:
            async with self._session.get(
                f"{self.url}/schemas/ids/{schema_id}", ssl=self.ssl_context if self.ssl_context else True
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RegistryUnavailable(f"schema registry unreachable: {type(exc).__name__}: {exc}") from exc
        if status == 404:
            raise AvroDecodeError(f"schema id {schema_id} not found in the registry")
        if status in (401, 403):
            raise RegistryUnavailable(f"schema registry refused the credentials (HTTP {status})")
        if status != 200:
            raise RegistryUnavailable(f"schema registry answered HTTP {status} for schema id {schema_id}")
        try:
            parsed = parse_schema(orjson.loads(body)["schema"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AvroDecodeError(f"schema id {schema_id}: unusable registry answer: {exc}") from exc
        self._schemas[schema_id] = parsed
        log.info("schema id %d loaded from the registry", schema_id)
        return parsed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AvroDecoder:
    """Decodes payloads to JSON objects with the static schema and/or the registry."""

    def __init__(self, static_schema: Any | None, registry: SchemaRegistryClient | None) -> None:
        self.static_schema = static_schema
        self.registry = registry

    async def decode(self, payload: bytes | None) -> dict[str, Any]:
        if payload is None:
            raise AvroDecodeError("empty payload (tombstone)")
        if self.registry is not None and len(payload) > 5 and payload[0] == WIRE_MAGIC:
            schema = await self.registry.schema(int.from_bytes(payload[1:5], "big"))
            body = payload[5:]
        elif self.static_schema is not None:
            schema, body = self.static_schema, payload
        else:
            raise AvroDecodeError("not in Confluent wire format and no static avroSchema configured")
        stream = io.BytesIO(body)
        try:
            value = fastavro.schemaless_reader(stream, schema, None)
        except Exception as exc:
            raise AvroDecodeError(f"invalid Avro data: {type(exc).__name__}: {exc}") from exc
        if stream.tell() != len(body):
            raise AvroDecodeError(f"invalid Avro data: {len(body) - stream.tell()} trailing bytes")
        value = to_json(value)
        if not isinstance(value, dict):
            raise AvroDecodeError(f"Avro value is a {type(value).__name__}, not a record")
        return value

    async def close(self) -> None:
        if self.registry is not None:
            await self.registry.close()
