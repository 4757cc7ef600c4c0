"""Typed configuration of every connector, source and sink side (original-behaviour.md §1.3-1.6).

These models are what the connector modules consume: ``connectors/kafka.py`` receives a
:class:`KafkaSourceConfig` and so on. Defaults are the original's, except where noted:
PostgreSQL sink ``batchSize`` defaults to 1000 (the original's 1 made every write a round trip),
and batch sinks take ``batchFlushIntervalSeconds`` (the later original's name).

The CRD (``config/crd/bases``) has one type per connector, shared by its source and sink sides;
each field's description says which side uses it. The models mirror that: a source config accepts
the sink-only fields and ignores them, and vice versa (``tests/test_crd_mirror.py`` walks both).

Secret-capable fields follow the ``x`` / ``xSecretRef`` rule of :mod:`.common`. TLS material and S3
keys that the original resolved into temp files or env vars are inline values here (``tls.cert``,
``tls.key``, ``tls.ca``, nessie ``accessKey``, ``secretAccessKey``): *secret targets*, filled only
from the mounted Secret (marked ``x-secret-target``; not in the CRD, so users cannot put secrets in
the spec itself). Nothing is written to disk by the operator.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dataflow_processor.spec.common import SecretRef, SpecModel, require_one_of
from dataflow_processor.spec.syntax import check_brokers, check_column_list, check_topic

MAX_BATCH = 100_000
"""Largest batchSize / readBatchSize, as in the CRD (scripts/gen_crd.py): what the default 512 MiB
processor holds; the pipeline also flushes a sink batch early by bytes (processor/README.md, Memory)."""

SECRET_TARGET: dict[str, Any] = {"x-secret-target": True}
"""Marks a field that only the mounted Secret fills (the literal twin of a ref the CRD has no literal for)."""


def _split_brokers(value: object) -> object:
    """``brokers`` may arrive as one comma-separated string (a resolved secret): split and trim."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# ----------------------------------------------------------------------------- Kafka


class KafkaTLS(SpecModel):
    insecure_skip_verify: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    cert: str | None = Field(default=None, description="PEM (from certSecretRef)", json_schema_extra=SECRET_TARGET)
    key: str | None = Field(default=None, description="PEM (from keySecretRef)", json_schema_extra=SECRET_TARGET)
    ca: str | None = Field(default=None, description="PEM (from caSecretRef)", json_schema_extra=SECRET_TARGET)
    cert_secret_ref: SecretRef | None = None
    key_secret_ref: SecretRef | None = None
    ca_secret_ref: SecretRef | None = None


class KafkaSASL(SpecModel):
    mechanism: Literal["", "plain", "PLAIN", "scram-sha-256", "scram-sha-512", "SCRAM-SHA-256", "SCRAM-SHA-512"] = (
        "plain"
    )
    username: str | None = None
    password: str | None = None
    username_secret_ref: SecretRef | None = None
    password_secret_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _credentials(self) -> KafkaSASL:
        require_one_of(self, "username", "password")
        return self


class BasicAuth(SpecModel):
    username: str | None = None
    password: str | None = None
    username_secret_ref: SecretRef | None = None
    password_secret_ref: SecretRef | None = None


class SchemaRegistry(SpecModel):
    url: str | None = None
    url_secret_ref: SecretRef | None = None
    basic_auth: BasicAuth | None = None
    tls: KafkaTLS | None = None

    @model_validator(mode="after")
    def _url(self) -> SchemaRegistry:
        require_one_of(self, "url")
        return self


class _KafkaCommon(SpecModel):
    brokers: list[str] | None = None
    brokers_secret_ref: SecretRef | None = None
    topic: str | None = None
    topic_secret_ref: SecretRef | None = None
    tls: KafkaTLS | None = None
    sasl: KafkaSASL | None = None
    consumer_group: str | None = Field(default="dataflow-operator", description="Source only.")
    consumer_group_secret_ref: SecretRef | None = None
    format: Literal["json", "avro"] = Field(default="json", description="Source only.")
    avro_schema: str | None = None
    avro_schema_secret_ref: SecretRef | None = None
    avro_schema_file: str | None = None
    schema_registry: SchemaRegistry | None = None
    raw_mode: bool = Field(default=False, description="Source: wrap payloads as {value, _metadata}.")
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH, description="Sink: records per produce batch.")

    _split = field_validator("brokers", mode="before")(_split_brokers)

    @field_validator("brokers")
    @classmethod
    def _broker_syntax(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_brokers(value)

    @field_validator("topic")
    @classmethod
    def _topic_syntax(cls, value: str | None) -> str | None:
        return check_topic(value)

    @model_validator(mode="after")
    def _required(self) -> _KafkaCommon:
        require_one_of(self, "brokers", "topic")
        return self


class KafkaSourceConfig(_KafkaCommon):
    """Kafka, read side."""

    @model_validator(mode="after")
    def _avro(self) -> KafkaSourceConfig:
        if self.format == "avro" and not (
            self.avro_schema or self.avro_schema_secret_ref or self.avro_schema_file or self.schema_registry
        ):
            raise ValueError("format avro needs avroSchema, avroSchemaSecretRef, avroSchemaFile or schemaRegistry")
        return self


class KafkaSinkConfig(_KafkaCommon):
    """Kafka, write side (source-only fields accepted and ignored)."""


# ----------------------------------------------------------------------------- PostgreSQL


class _PostgresCommon(SpecModel):
    connection_string: str | None = None
    connection_string_secret_ref: SecretRef | None = None
    table: str | None = None
    table_secret_ref: SecretRef | None = None
    raw_mode: bool = False
    # source side
    query: str | None = Field(default=None, description="Source: custom SELECT run on every poll.")
    poll_interval: int = Field(default=5, ge=1, description="Source: seconds between polls.")
    key_column: str = Field(default="id", description="Source: increasing column the poll resumes from.")
    change_tracking_column: str | None = Field(default=None, description="Source: timestamp column to poll by.")
    read_batch_size: int = Field(default=1000, ge=1, le=MAX_BATCH, description="Source: rows per poll query.")
    # sink side
    batch_size: int = Field(default=1000, ge=1, le=MAX_BATCH, description="Sink: rows per COPY batch and transaction.")
    batch_flush_interval_seconds: float = Field(default=1.0, ge=0, description="Sink: flush a partial batch after.")
    auto_create_table: bool = False
    upsert_mode: bool = False
    conflict_key: str = Field(default="id", description="Sink: conflict column(s) for upsertMode, comma-separated.")

    @field_validator("conflict_key")
    @classmethod
    def _conflict_key_syntax(cls, value: str) -> str:
        return check_column_list(value)


class PostgresSourceConfig(_PostgresCommon):
    """PostgreSQL, read side: a ``table`` to poll, or a custom ``query`` (then ``table`` is optional
    and only labels the records' metadata), as the admission policy allows."""

    @model_validator(mode="after")
    def _required(self) -> PostgresSourceConfig:
        require_one_of(self, "connection_string")
        if self.query is None:
            require_one_of(self, "table")
        elif not self.query.strip():
            raise ValueError("query: must not be empty")
        return self


class PostgresSinkConfig(_PostgresCommon):
    """PostgreSQL, write side."""

    @model_validator(mode="after")
    def _required(self) -> PostgresSinkConfig:
        require_one_of(self, "connection_string", "table")
        return self


# ----------------------------------------------------------------------------- Trino


class Keycloak(SpecModel):
    server_url: str | None = Field(default=None, alias="serverURL")
    server_url_secret_ref: SecretRef | None = Field(default=None, alias="serverURLSecretRef")
    realm: str | None = None
    realm_secret_ref: SecretRef | None = None
    client_id: str | None = Field(default=None, alias="clientID")
    client_id_secret_ref: SecretRef | None = Field(default=None, alias="clientIDSecretRef")
    client_secret: str | None = None
    client_secret_secret_ref: SecretRef | None = None
    username: str | None = None
    username_secret_ref: SecretRef | None = None
    password: str | None = None
    password_secret_ref: SecretRef | None = None
    token: str | None = None
    token_secret_ref: SecretRef | None = None


class _TrinoCommon(SpecModel):
    server_url: str | None = Field(default=None, alias="serverURL")
    server_url_secret_ref: SecretRef | None = Field(default=None, alias="serverURLSecretRef")
    catalog: str | None = None
    catalog_secret_ref: SecretRef | None = None
    schema_: str | None = Field(default=None, alias="schema")
    schema_secret_ref: SecretRef | None = None
    table: str | None = None
    table_secret_ref: SecretRef | None = None
    keycloak: Keycloak | None = None
    basic_auth: BasicAuth | None = Field(default=None, description="HTTP basic auth (ignored when keycloak is set)")
    query_timeout_seconds: float = Field(default=30.0, gt=0, description="HTTP request timeout of each query")
    raw_mode: bool = False

    def _require(self, *, table: bool) -> None:
        missing = []
        for attr, alias in (
            ("server_url", "serverURL"),
            ("catalog", "catalog"),
            ("schema_", "schema"),
            ("table", "table"),
        ):
            if attr == "table" and not table:
                continue
            ref = "schema_secret_ref" if attr == "schema_" else f"{attr}_secret_ref"
            if not getattr(self, attr) and getattr(self, ref) is None:
                missing.append(f"{alias} or {alias}SecretRef is required")
        if missing:
            raise ValueError("; ".join(missing))


class TrinoSourceConfig(_TrinoCommon):
    """Trino, read side: a ``table`` to poll, or a custom ``query`` (then ``table`` is optional; the
    query names its own tables with the connection's ``catalog`` and ``schema`` as defaults)."""

    # sink-only fields, accepted and ignored on the read side
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH)
    batch_flush_interval_seconds: float = Field(default=1.0, ge=0)
    auto_create_table: bool = False
    query: str | None = None
    poll_interval: int = Field(default=5, ge=1)
    key_column: str = Field(
        default="id",
        description="unique, increasing column the source polls by (its last value is the checkpoint); "
        '"" re-runs a custom query every poll',
    )

    @model_validator(mode="after")
    def _required(self) -> TrinoSourceConfig:
        if self.query is not None and not self.query.strip():
            raise ValueError("query: must not be empty")
        self._require(table=self.query is None)
        return self


class TrinoSinkConfig(_TrinoCommon):
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH, description="Sink: rows per INSERT.")
    batch_flush_interval_seconds: float = Field(default=1.0, ge=0)
    auto_create_table: bool = False
    # source-only fields, accepted and ignored on the write side
    query: str | None = None
    poll_interval: int = Field(default=5, ge=1)
    key_column: str = "id"

    @model_validator(mode="after")
    def _required(self) -> TrinoSinkConfig:
        self._require(table=True)
        return self


# ----------------------------------------------------------------------------- Nessie (Iceberg)


class _NessieCommon(SpecModel):
    base_url: str | None = Field(default=None, alias="baseURL")
    base_url_secret_ref: SecretRef | None = Field(default=None, alias="baseURLSecretRef")
    branch: str = "main"
    warehouse: str = ""
    namespace: str | None = None
    namespace_secret_ref: SecretRef | None = None
    table: str | None = None
    table_secret_ref: SecretRef | None = None
    token: str | None = None
    token_secret_ref: SecretRef | None = None
    basic_auth: BasicAuth | None = None
    authentication_type: Literal["AUTO", "BEARER", "BASIC", "NONE"] = "AUTO"
    raw_mode: bool = False

    @model_validator(mode="after")
    def _required(self) -> _NessieCommon:
        require_one_of(self, "base_url", "namespace", "table")
        if self.authentication_type == "BEARER" and not (self.token or self.token_secret_ref):
            raise ValueError("authenticationType BEARER needs token or tokenSecretRef")
        if self.authentication_type == "BASIC":
            auth = self.basic_auth
            if (
                auth is None
                or not (auth.username or auth.username_secret_ref)
                or not (auth.password or auth.password_secret_ref)
            ):
                raise ValueError("authenticationType BASIC needs basicAuth username and password")
        return self


class _NessieFields(_NessieCommon):
    poll_interval: int = Field(default=10, ge=1, description="Source: seconds between snapshot polls.")
    batch_size: int = Field(default=10000, ge=1, le=MAX_BATCH, description="Sink: rows per Iceberg commit.")
    batch_flush_interval_seconds: float = Field(default=10.0, ge=0, description="Sink: commit a partial batch after.")
    auto_create_table: bool = False
    s3_endpoint: str | None = Field(default=None, alias="s3Endpoint")
    s3_region: str = Field(default="us-east-1", alias="s3Region")
    access_key: str | None = Field(default=None, json_schema_extra=SECRET_TARGET)
    access_key_secret_ref: SecretRef | None = None
    secret_access_key: str | None = Field(default=None, json_schema_extra=SECRET_TARGET)
    secret_access_key_secret_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _s3_keys(self) -> _NessieFields:
        if (self.access_key_secret_ref is None) != (self.secret_access_key_secret_ref is None):
            raise ValueError("accessKeySecretRef and secretAccessKeySecretRef must be given both or neither")
        return self


class NessieSourceConfig(_NessieFields):
    """Nessie (Iceberg), read side."""


class NessieSinkConfig(_NessieFields):
    """Nessie (Iceberg), write side."""


SOURCE_CONFIGS: dict[str, type[SpecModel]] = {
    "kafka": KafkaSourceConfig,
    "postgresql": PostgresSourceConfig,
    "trino": TrinoSourceConfig,
    "nessie": NessieSourceConfig,
}
SINK_CONFIGS: dict[str, type[SpecModel]] = {
    "kafka": KafkaSinkConfig,
    "postgresql": PostgresSinkConfig,
    "trino": TrinoSinkConfig,
    "nessie": NessieSinkConfig,
}
