"""Shared pieces of the connector integration tests: unique topics and tables, producing and reading
back, and running a real :class:`~dataflow_processor.pipeline.Pipeline` from a spec dict until a
condition holds.

Every test gets its own topic / table / consumer group (uuid-suffixed), so tests never see each
other's data and can run in any order against the one local Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from dataflow_processor.connectors.memory import MemorySink
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec.loader import parse_spec
from dataflow_processor.transforms.chain import TransformChain

from tests.conftest import require_env

# Fast flushes and commits so tests finish in seconds.
FAST = PipelineSettings(batch_size=200, linger_seconds=0.02, commit_interval=0.1, retry_initial=0.05, retry_max=1.0)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_dsn() -> str:
    (dsn,) = require_env("DATAFLOW_PG_DSN")
    return dsn


@pytest.fixture
def bootstrap() -> str:
    (servers,) = require_env("DATAFLOW_KAFKA_BOOTSTRAP")
    return servers


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def table(pg: asyncpg.Connection) -> AsyncIterator[str]:
    """A fresh table name (not created); dropped afterwards."""
    name = unique("it")
    yield name
    await pg.execute(f'DROP TABLE IF EXISTS "{name}"')


@pytest.fixture
def checkpoint_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    directory = tmp_path / "checkpoints"
    monkeypatch.setenv("DATAFLOW_CHECKPOINT_DIR", str(directory))
    return directory


async def create_topic(bootstrap: str, name: str, partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


@pytest.fixture
async def topic(bootstrap: str) -> str:
    name = unique("it")
    await create_topic(bootstrap, name)
    return name


Message = bytes | dict[str, Any] | tuple[bytes | None, bytes | dict[str, Any] | None]


async def produce(bootstrap: str, topic: str, messages: Iterable[Message], partition: int | None = None) -> None:
    """Send messages (a dict is JSON-encoded; a tuple is ``(key, value)``) and wait for delivery."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for message in messages:
            key, value = message if isinstance(message, tuple) else (None, message)
            payload = orjson.dumps(value) if isinstance(value, dict) else value
            futures.append(await producer.send(topic, payload, key=key, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0, **options: Any) -> list[Any]:
    """Every record of a topic from the start (stops at ``expected`` or when nothing more comes)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **options,
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(records)
        # anything beyond `expected` (duplicates) shows up within a short grace period
        extra = await consumer.getmany(timeout_ms=300)
        for records in extra.values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got


async def committed_offsets(bootstrap: str, topic: str, group: str, partitions: int = 4) -> dict[int, int | None]:
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def run_until(
    spec: dict[str, Any],
    done: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 30.0,
    name: str | None = None,
    settings: PipelineSettings = FAST,
) -> Pipeline:
    """Run a pipeline from a spec dict until ``done()`` holds, then stop it (as SIGTERM does)."""
    pipeline = Pipeline.from_spec(parse_spec(spec), namespace="it", name=name or unique("flow"), settings=settings)
    task = asyncio.create_task(pipeline.run())
    try:
        deadline = time.monotonic() + timeout
        while not await done():
            if task.done():
                await task  # raises the pipeline's failure
                raise AssertionError("pipeline ended before the condition held")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s; pipeline metrics: {pipeline.metrics.processed_total}"
                )
            await asyncio.sleep(0.1)
    finally:
        pipeline.stop()
        await asyncio.wait_for(task, 30)
    return pipeline


async def collect(
    source: Any, until: int, *, settle: float = 1.5, settings: PipelineSettings = FAST, timeout: float = 60.0
) -> MemorySink:
    """Run ``source`` → a memory sink until it holds ``until`` records, wait ``settle`` s more (longer
    than a pollInterval of 1: nothing more may come), then stop as SIGTERM does."""
    sink = MemorySink()
    pipeline = Pipeline(source=source, chain=TransformChain.from_spec([]), sink=sink, settings=settings)
    task = asyncio.create_task(pipeline.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(sink.records) < until:
        if task.done():
            await task  # raises the pipeline's failure
            raise AssertionError(f"pipeline ended with only {len(sink.records)} of {until} records")
        assert loop.time() < deadline, f"only {len(sink.records)} of {until} records arrived"
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle)
    pipeline.stop()
    await asyncio.wait_for(task, 30)
    return sink


async def count_rows(pg: asyncpg.Connection, table: str) -> int:
    try:
        return int(await pg.fetchval(f'SELECT count(*) FROM "{table}"'))
    except asyncpg.exceptions.UndefinedTableError:
        return 0


# ----------------------------------------------------------------------------- Trino


def trino_run(url: str, sql: str) -> list[list[Any]]:
    """Run one statement on the real Trino directly (test set-up and assertions)."""
    from urllib.parse import urlsplit

    import trino

    u = urlsplit(url)
    conn = trino.dbapi.connect(host=u.hostname, port=u.port, http_scheme=u.scheme, user="test")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def trino_schema(trino_url: str, trino_catalog: str) -> Iterator[str]:
    """A fresh schema in the writable catalog, dropped (with its tables) afterwards."""
    schema = unique("it")
    trino_run(trino_url, f'CREATE SCHEMA "{trino_catalog}"."{schema}"')
    yield schema
    for (name,) in trino_run(trino_url, f'SHOW TABLES FROM "{trino_catalog}"."{schema}"'):
        trino_run(trino_url, f'DROP TABLE IF EXISTS "{trino_catalog}"."{schema}"."{name}"')
    trino_run(trino_url, f'DROP SCHEMA IF EXISTS "{trino_catalog}"."{schema}"')


@pytest.fixture
def trino_proxy(trino_url: str) -> Iterator[Any]:
    """A recording HTTP proxy in front of the real Trino (``http_doubles.RecordingProxy``)."""
    from tests.integration.http_doubles import RecordingProxy

    proxy = RecordingProxy(trino_url)
    yield proxy
    proxy.close()


@pytest.fixture
def token_endpoint() -> Iterator[Any]:
    """A local OpenID token endpoint with Keycloak's URL layout (``http_doubles.TokenEndpoint``)."""
    from tests.integration.http_doubles import TokenEndpoint

    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.close()


# ----------------------------------------------------------------------------- Nessie (Iceberg)


def nessie_catalog(ref: str = "main") -> Any:
    """pyiceberg on the local Nessie's Iceberg REST catalog, on branch ``ref`` (test set-up, assertions)."""
    from pyiceberg.catalog.rest import RestCatalog

    url, warehouse, access, secret, region = require_env(
        "DATAFLOW_NESSIE_ICEBERG_URL",
        "DATAFLOW_NESSIE_WAREHOUSE",
        "DATAFLOW_S3_ACCESS_KEY",
        "DATAFLOW_S3_SECRET_KEY",
        "DATAFLOW_S3_REGION",
    )
    return RestCatalog(
        f"test-{ref}",
        uri=f"{url}/{ref}|{warehouse}",
        **{"s3.access-key-id": access, "s3.secret-access-key": secret, "s3.region": region},
    )


def nessie_connector(namespace: str, table: str, **extra: Any) -> dict[str, Any]:
    """A ``nessie`` connector block for the local Nessie and S3 store (credentials inline)."""
    url, warehouse, endpoint, access, secret, region = require_env(
        "DATAFLOW_NESSIE_URL",
        "DATAFLOW_NESSIE_WAREHOUSE",
        "DATAFLOW_S3_ENDPOINT",
        "DATAFLOW_S3_ACCESS_KEY",
        "DATAFLOW_S3_SECRET_KEY",
        "DATAFLOW_S3_REGION",
    )
    return {
        "baseURL": url,
        "warehouse": warehouse,
        "namespace": namespace,
        "table": table,
        "s3Endpoint": endpoint,
        "accessKey": access,
        "secretAccessKey": secret,
        "s3Region": region,
        **extra,
    }


def nessie_secret_refs(connector: dict[str, Any], role: str = "sink") -> dict[str, str]:
    """Turn a ``nessie`` connector block's inline S3 keys into secret refs, the way the operator
    delivers them (the CLI's spec has no inline keys); return the mounted Secret's values."""
    secrets = {
        f"{role}.nessie.accessKey": connector.pop("accessKey"),
        f"{role}.nessie.secretAccessKey": connector.pop("secretAccessKey"),
    }
    connector["accessKeySecretRef"] = {"name": "s3", "key": "access-key"}
    connector["secretAccessKeySecretRef"] = {"name": "s3", "key": "secret-key"}
    return secrets


@pytest.fixture
def nessie_namespace(nessie: Any, s3_store: Any) -> Iterator[str]:
    """A fresh Iceberg namespace on ``main``; its tables, the namespace and its S3 objects go afterwards."""
    import contextlib

    from pyarrow import fs

    catalog = nessie_catalog()
    namespace = unique("it")
    catalog.create_namespace(namespace)
    yield namespace
    for ident in catalog.list_tables(namespace):
        catalog.drop_table(ident)
    with contextlib.suppress(Exception):
        catalog.drop_namespace(namespace)
    endpoint = s3_store.endpoint.split("://", 1)
    store = fs.S3FileSystem(
        access_key=s3_store.access_key,
        secret_key=s3_store.secret_key,
        region=s3_store.region,
        endpoint_override=endpoint[1],
        scheme=endpoint[0],
    )
    root = f"{s3_store.bucket}/{namespace}"
    selector = fs.FileSelector(root, recursive=True, allow_not_found=True)
    for info in sorted(store.get_file_info(selector), key=lambda i: -i.path.count("/")):
        with contextlib.suppress(OSError):
            store.delete_file(info.path) if info.type == fs.FileType.File else store.delete_dir(info.path)
    with contextlib.suppress(OSError):
        store.delete_dir(root)
