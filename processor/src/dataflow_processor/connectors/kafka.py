"""Kafka source (consumer group, explicit commits from the watermark) and sink (idempotent producer), on aiokafka.

**Source.** One topic, consumer group ``consumerGroup`` (default ``dataflow-operator``), round-robin
assignment, earliest offset when the group has none, auto-commit **off**. A fetch task calls
``getmany`` (batched fetch, up to the pipeline's batch size) and hands batches to ``batches()``
through a queue of two; when that queue is full — the pipeline is not asking because its own
queues are full — every assigned partition is **paused** until there is room again, so the
consumer stops fetching instead of buffering. ``ack(watermarks)`` commits exactly the pipeline's
watermark per partition (the next offset to read: everything below it is written).

On **revocation** (a rebalance) the source drops fetched records of those partitions not yet handed
over, waits up to ``REVOKE_FLUSH_SECONDS`` for the pipeline to finish and acknowledge what it
already has from them (that ``ack`` commits), then tells the pipeline to forget the rest — the new
owner re-reads it (at least once). On **shutdown** the pipeline flushes and calls ``ack`` before
``close``, so the final offsets are committed before the consumer leaves the group.

Record metadata: ``topic``, ``partition``, ``offset``, ``key`` (text, ``""`` without a key),
``timestamp`` (ms) and ``headers`` (text values). ``format: json`` hands the raw bytes to the
pipeline's parse stage; ``format: avro`` decodes here (:mod:`.avro`) and a payload that does not
decode becomes an :class:`~dataflow_processor.records.UndecodableRecord` (→ errors sink, offset
acknowledged once that is written). ``rawMode`` wraps the payload as ``{"value": <payload>,
"_metadata": {offset, partition, timestamp, key, topic}}`` — a payload that is not JSON is kept as
text, so nothing fails to parse in raw mode.

**Sink.** ``acks=all`` with the idempotent producer; a batch is sent without waiting per record and
then every delivery is awaited before ``write`` returns, so the source is acknowledged only for
delivered records. The key is the record's metadata ``key`` when it is a non-empty string (records
read from Kafka keep their key). A record the broker refuses for itself (too large, invalid) fails
alone; anything else (timeouts, no leader, connection) fails the batch as transient and the
pipeline resends it.

**Security** (both sides): TLS with a CA (file or inline PEM), a client certificate and key (files
or inline PEM; inline ones go through a private temp file that is deleted once loaded), or
``insecureSkipVerify``; SASL ``plain``, ``scram-sha-256``, ``scram-sha-512`` over plaintext or TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from dataflow_processor.connectors.avro import (
    AvroDecodeError,
    AvroDecoder,
    RegistryUnavailable,
    SchemaRegistryClient,
    parse_schema,
)
from dataflow_processor.connectors.base import (
    BatchPolicy,
    ConnectorContext,
    RecordFailure,
    RevokedCallback,
    Sink,
    Source,
    TransientError,
    WriteResult,
)
from dataflow_processor.connectors.registry import register_sink, register_source
from dataflow_processor.records import EMPTY_METADATA, Partition, Position, Record, UndecodableRecord
from dataflow_processor.spec.connectors import KafkaSASL, KafkaSinkConfig, KafkaSourceConfig, KafkaTLS

log = logging.getLogger("dataflow_processor.connectors.kafka")

CLIENT_ID = "dataflow-operator"
REVOKE_FLUSH_SECONDS = 10.0
FETCH_TIMEOUT_MS = 500
QUEUED_BATCHES = 2
# Errors the broker gives for one record itself: that record can never be written.
RECORD_REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)


# ----------------------------------------------------------------------------- security


def ssl_context(tls: KafkaTLS) -> ssl.SSLContext:
    """A client TLS context (≥ 1.2) from file paths and/or inline PEM text."""
    context = ssl.create_default_context(cafile=tls.ca_file or None, cadata=tls.ca or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = tls.cert or tls.cert_file, tls.key or tls.key_file
    if cert:
        if tls.cert or tls.key:  # inline PEM: load_cert_chain only reads files
            with tempfile.TemporaryDirectory(prefix="dataflow-tls-") as directory:
                cert_path = _private_file(directory, "cert.pem", tls.cert) if tls.cert else tls.cert_file
                key_path = _private_file(directory, "key.pem", tls.key) if tls.key else tls.key_file
                context.load_cert_chain(cert_path or "", key_path or None)
        else:
            context.load_cert_chain(cert, key or None)
    return context


def _private_file(directory: str, name: str, text: str) -> str:
    path = Path(directory) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return str(path)


SASL_MECHANISMS = {"": "PLAIN", "plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}


def client_options(
    brokers: list[str] | None, tls: KafkaTLS | None, sasl: KafkaSASL | None, protocol: str | None = None
) -> dict[str, Any]:
    """aiokafka keyword arguments for the brokers and security settings of a config.

    ``protocol`` (``securityProtocol``) defaults to what ``tls`` and ``sasl`` imply; a TLS protocol
    without a ``tls`` block verifies the brokers against the system's CA bundle.
    """
    if not brokers:
        raise ValueError("kafka: brokers are not resolved")
    if protocol is None:
        protocol = ("SASL_" if sasl is not None else "") + ("SSL" if tls is not None else "PLAINTEXT")
    options: dict[str, Any] = {"bootstrap_servers": ",".join(brokers), "client_id": CLIENT_ID}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(tls if tls is not None else KafkaTLS())
    if protocol != "PLAINTEXT":
        options["security_protocol"] = protocol
    if sasl is not None:
        options["sasl_mechanism"] = SASL_MECHANISMS[sasl.mechanism.lower()]
        options["sasl_plain_username"] = sasl.username
        options["sasl_plain_password"] = sasl.password
    return options


# ----------------------------------------------------------------------------- source


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.source._revoked([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.source._assigned([tp.partition for tp in assigned])


@register_source("kafka")
class KafkaSource(Source):
    type_name = "kafka"

    def __init__(self, config: KafkaSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.topic = config.topic or ""
        self.consumer: AIOKafkaConsumer | None = None
        self.decoder: AvroDecoder | None = None
        self._on_revoked: RevokedCallback | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(QUEUED_BATCHES)
        self._fetcher: asyncio.Task[None] | None = None
        self._generation = 0
        self._assigned_at: dict[int, int] = {}  # partition → generation of its assignment
        self._handed: dict[int, int] = {}  # partition → next offset after the last record handed over
        self._acked: dict[int, int] = {}  # partition → last watermark committed
        self._ack_event = asyncio.Event()
        self._closing = False

    def on_revoked(self, callback: RevokedCallback) -> None:
        self._on_revoked = callback

    async def connect(self) -> None:
        config = self.config
        if config.format == "avro":
            self.decoder = self._avro_decoder()
        options = client_options(config.brokers, config.tls, config.sasl, config.security_protocol)
        self.consumer = AIOKafkaConsumer(
            group_id=config.consumer_group or "dataflow-operator",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
            **options,
        )
        await self.consumer.start()
        try:
            self.consumer.subscribe(topics=[self.topic], listener=_Rebalance(self))
        except Exception:
            await self.consumer.stop()
            raise
        log.info("kafka source subscribed to %s as group %s", self.topic, config.consumer_group)

    def _avro_decoder(self) -> AvroDecoder:
        config = self.config
        text = config.avro_schema
        if text is None and config.avro_schema_file:
            text = Path(config.avro_schema_file).read_text()
        static = parse_schema(text) if text else None
        registry = None
        if config.schema_registry is not None:
            auth = config.schema_registry.basic_auth
            registry_tls = config.schema_registry.tls
            registry = SchemaRegistryClient(
                config.schema_registry.url or "",
                username=auth.username if auth else None,
                password=auth.password if auth else None,
                ssl_context=ssl_context(registry_tls) if registry_tls is not None else None,
            )
        return AvroDecoder(static, registry)

    # -------------------------------------------------------------- rebalance

    def _assigned(self, partitions: list[int]) -> None:
        self._generation += 1
        for partition in partitions:
            self._assigned_at[partition] = self._generation
        log.info("kafka partitions assigned: %s", sorted(partitions))

    async def _revoked(self, partitions: list[int]) -> None:
        self._generation += 1
        for partition in partitions:
            self._assigned_at.pop(partition, None)
        if not self._closing:
            deadline = time.monotonic() + REVOKE_FLUSH_SECONDS
            while self._unacked(partitions) and (remaining := deadline - time.monotonic()) > 0:
                self._ack_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ack_event.wait(), remaining)
            late = self._unacked(partitions)
            if late:
                log.warning("partitions %s revoked with records in flight: the new owner will re-read them", late)
        for partition in partitions:
            self._handed.pop(partition, None)
            self._acked.pop(partition, None)
        if self._on_revoked is not None and partitions:
            self._on_revoked(list(partitions))
        log.info("kafka partitions revoked: %s", sorted(partitions))

    def _unacked(self, partitions: list[int]) -> list[int]:
        """Partitions with records handed to the pipeline but not yet acknowledged."""
        return [p for p in partitions if p in self._handed and self._acked.get(p, -1) < self._handed[p]]

    # -------------------------------------------------------------- reading

    async def batches(self, policy: BatchPolicy) -> AsyncIterator[list[Record]]:
        if self._fetcher is None:
            self._fetcher = asyncio.create_task(self._fetch(policy), name="kafka-fetch")
        queue = self._queue
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            generation, records, ends = item
            assigned_at = self._assigned_at
            stale = [p for p in ends if assigned_at.get(p, generation + 1) > generation]
            if stale:
                # a rebalance happened since this was fetched: keep only partitions still ours
                records = [r for r in records if r.position.partition not in stale]
                ends = {p: end for p, end in ends.items() if p not in stale}
            if not records:
                continue
            self._handed.update(ends)
            yield records

    async def _fetch(self, policy: BatchPolicy) -> None:
        consumer = self.consumer
        assert consumer is not None
        try:
            while True:
                try:
                    data = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=policy.max_records)
                except (KafkaConnectionError, KafkaTimeoutError) as exc:
                    log.warning("kafka fetch failed, retrying: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                if not data:
                    continue
                generation = self._generation
                records = await self._records(data)
                # per partition: the offset after the last record of this batch
                item = (generation, records, {tp.partition: messages[-1].offset + 1 for tp, messages in data.items()})
                if self._queue.full():
                    paused = list(consumer.assignment())
                    consumer.pause(*paused)
                    try:
                        await self._queue.put(item)
                    finally:
                        assignment = consumer.assignment()
                        consumer.resume(*[tp for tp in paused if tp in assignment])
                else:
                    self._queue.put_nowait(item)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.error("kafka source failed: %s", exc)
            await self._queue.put(exc)

    async def _records(self, data: Mapping[TopicPartition, list[Any]]) -> list[Record]:
        topic = self.topic
        raw_mode = self.config.raw_mode
        decoder = self.decoder
        out: list[Record] = []
        append = out.append
        if decoder is None and not raw_mode:  # the hot path: raw bytes for the pipeline's JSON parse
            new_position = tuple.__new__
            for tp, messages in data.items():
                partition = tp.partition
                for message in messages:
                    append(KafkaRecord(message, new_position(Position, (partition, message.offset))))
            return out
        for tp, messages in data.items():
            partition = tp.partition
            for message in messages:
                metadata = message_metadata(message)
                key = metadata["key"]
                position = Position(partition, message.offset)
                payload = message.value
                if decoder is not None:
                    try:
                        value: Any = await self._decode(decoder, payload)
                    except AvroDecodeError as exc:
                        append(UndecodableRecord(payload or b"", str(exc), metadata=metadata, position=position))
                        continue
                else:
                    value = _json_or_text(payload)
                if raw_mode:
                    value = {
                        "value": value,
                        "_metadata": {
                            "offset": message.offset,
                            "partition": partition,
                            "timestamp": message.timestamp,
                            "key": key,
                            "topic": topic,
                        },
                    }
                append(
                    Record(value, raw=None if decoder is not None else payload, metadata=metadata, position=position)
                )
        return out

    async def _decode(self, decoder: AvroDecoder, payload: bytes | None) -> dict[str, Any]:
        """Decode, waiting out an unreachable registry (the record is retried, never skipped)."""
        delay = 0.5
        while True:
            try:
                return await decoder.decode(payload)
            except RegistryUnavailable as exc:
                log.warning("%s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def ack(self, watermarks: Mapping[Partition, int]) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        assignment = consumer.assignment()
        offsets = {}
        for partition, offset in watermarks.items():
            tp = TopicPartition(self.topic, int(partition))
            if tp in assignment:
                offsets[tp] = offset
        if not offsets:
            return
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            self._acked[tp.partition] = offset
        self._ack_event.set()

    async def close(self) -> None:
        self._closing = True
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._fetcher
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None
        if self.decoder is not None:
            await self.decoder.close()


def message_metadata(message: Any) -> dict[str, Any]:
    """The record metadata of a Kafka message (``ConsumerRecord``)."""
    key = message.key
    headers = message.headers
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": key.decode("utf-8", "replace") if key is not None else "",
        "timestamp": message.timestamp,
        "headers": _headers(headers) if headers else EMPTY_METADATA,
    }


_METADATA_SLOT: Any = Record.__dict__["metadata"]  # the base class's slot, under KafkaRecord's property


class KafkaRecord(Record):
    """A record read from Kafka (JSON payload) whose ``metadata`` dict is built on first use.

    Most chains never look at the metadata, so the hot path keeps the message instead of building
    a dict per record; reading ``metadata`` (errors envelopes, the Kafka sink's key, routes on
    metadata) builds it once from the message. Assigning it works as for any record.
    """

    __slots__ = ("_message",)

    def __init__(self, message: Any, position: Position) -> None:  # sets every slot but metadata itself
        self.value = None
        self.raw = message.value
        self.position = position
        self.token = None
        self.ack_index = 0
        self.route = None
        self.size = len(self.raw) if self.raw else 0  # the pipeline's estimate of its bytes (payload_size)
        self._message = message

    @property
    def metadata(self) -> Mapping[str, Any]:
        try:
            return _METADATA_SLOT.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            built = message_metadata(self._message)
            _METADATA_SLOT.__set__(self, built)
            return built

    @metadata.setter
    def metadata(self, value: Mapping[str, Any]) -> None:
        _METADATA_SLOT.__set__(self, value)


def _headers(headers: Any) -> dict[str, str | None]:
    return {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in headers}


def _json_or_text(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")


# ----------------------------------------------------------------------------- sink


@register_sink("kafka")
class KafkaSink(Sink):
    type_name = "kafka"

    def __init__(self, config: KafkaSinkConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.topic = config.topic or ""
        self.producer: AIOKafkaProducer | None = None

    async def connect(self) -> None:
        config = self.config
        self.producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
            **client_options(config.brokers, config.tls, config.sasl, config.security_protocol),
        )
        await self.producer.start()

    async def write(self, batch: list[Record]) -> WriteResult:
        producer = self.producer
        if producer is None:
            raise TransientError("kafka sink is not connected")
        failures: list[RecordFailure] = []
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        dumps = orjson.dumps
        for index, record in enumerate(batch):
            key = record.metadata.get("key")
            try:
                future = await producer.send(
                    self.topic,
                    dumps(record.value, default=str),
                    key=key.encode() if isinstance(key, str) and key else None,
                )
            except RECORD_REFUSED as exc:
                failures.append(RecordFailure(index, f"kafka refused the record: {exc}"))
                continue
            except TypeError as exc:
                failures.append(RecordFailure(index, f"cannot encode the record as JSON: {exc}"))
                continue
            pending.append((index, future))
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        transient: BaseException | None = None
        for (index, _), result in zip(pending, results, strict=True):
            if isinstance(result, RECORD_REFUSED):
                failures.append(RecordFailure(index, f"kafka refused the record: {result}"))
            elif isinstance(result, BaseException):
                transient = result
        if transient is not None:
            kind = "timeout" if isinstance(transient, KafkaTimeoutError) else type(transient).__name__
            raise TransientError(f"kafka delivery failed ({kind}): {transient}") from transient
        failures.sort(key=lambda f: f.index)
        return WriteResult(failures)

    async def close(self) -> None:
        if self.producer is not None:
            with contextlib.suppress(KafkaError):
                await self.producer.flush()
            await self.producer.stop()
            self.producer = None
