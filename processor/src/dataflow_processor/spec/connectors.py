"""Typed configuration of every connector, source and sink side: the one declaration of each field.

These models are what the connector modules consume: ``connectors/kafka.py`` receives a
:class:`KafkaSourceConfig` and so on. Each field carries its description, default and bounds; the
CRD's connector blocks, the admission policy's required-or-ref rules and the field tables of
``docs/connectors/*.md`` are generated from them (``scripts/gen_crd.py``, ``gen_policy.py``,
``gen_spec_docs.py``). PostgreSQL sink ``batchSize`` defaults to 1000: a batch of 1 made every
write a round trip.

The CRD has one type per connector, shared by its source and sink sides; a field one side only
uses is marked (``only("sink")``) and its description says so. The models follow: a source config
accepts the sink-only fields and ignores them, and vice versa, and both sides of a connector derive
from one class holding every field (``tests/test_spec_declaration.py`` checks it).

Secret-capable fields are declared with :func:`.common.secret`, which also makes the ``…SecretRef``
twin. TLS material and S3 keys are *secret targets* (``in_manifest=False``: ``tls.cert``,
``tls.key``, ``tls.ca``, nessie ``accessKey``, ``secretAccessKey``): filled only from the mounted
Secret, so the CRD has their refs only and users cannot put those secrets in the spec itself.
Nothing is written to disk by the operator.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from dataflow_processor.spec.common import Side, SpecModel, crd, only, require_one_of, secret
from dataflow_processor.spec.syntax import check_brokers, check_column_list, check_column_name, check_topic

MAX_BATCH = 100_000
"""Largest batchSize / readBatchSize: what the default 512 MiB processor holds with room to spare
(~1.3 KB per 220-byte record in flight); the pipeline also flushes a sink batch early by bytes
(processor/README.md, Memory)."""
MAX_POLL_SECONDS = 86_400
MAX_FLUSH_SECONDS = 3_600
"""Longest ``batchFlushIntervalSeconds``: a partial batch waits at most an hour (fractions allowed)."""


def _split_brokers(value: object) -> object:
    """``brokers`` may arrive as one comma-separated string (a resolved secret): split and trim."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def order_by_is_key_column(data: Any) -> Any:
    """``orderByColumn`` (the Go project's name) is read as ``keyColumn``: one cursor column, two names.

    Declared as a field so that the CRD admits the name; from here on only ``keyColumn`` is read.
    """
    if not isinstance(data, dict):
        return data
    names = [n for n in ("orderByColumn", "order_by_column") if n in data]
    if not names:
        return data
    value = data[names[0]]
    keys = [data[n] for n in ("keyColumn", "key_column") if n in data]
    if any(key != value for key in keys) or len({data[n] for n in names}) > 1:
        raise ValueError("orderByColumn: another name for keyColumn: give one of the two, or both the same")
    rest = {k: v for k, v in data.items() if k not in ("orderByColumn", "order_by_column", "key_column")}
    return rest | ({"keyColumn": value} if value is not None else {})


def _order_by_column_field() -> str | None:
    """The ``orderByColumn`` field of the polling sources (see :func:`order_by_is_key_column`)."""
    return Field(
        default=None,
        max_length=63,
        description="another name for keyColumn (give one of the two, or both the same).",
        json_schema_extra=only("source"),
    )


class BasicAuth(SpecModel):
    username: str | None = secret("User name.", max_length=253)
    password: str | None = secret("Password.", max_length=1024)


# ----------------------------------------------------------------------------- Kafka


class KafkaTLS(SpecModel):
    insecure_skip_verify: bool = Field(
        default=False, description="Skip verification of the server certificate (testing only)."
    )
    ca_file: str | None = Field(
        default=None, description="Path of a PEM CA bundle inside the processor container.", max_length=1024
    )
    cert_file: str | None = Field(
        default=None, description="Path of a PEM client certificate inside the processor container.", max_length=1024
    )
    key_file: str | None = Field(
        default=None, description="Path of a PEM client key inside the processor container.", max_length=1024
    )
    ca: str | None = secret("PEM CA bundle.", what="the PEM CA bundle", in_manifest=False)
    cert: str | None = secret("PEM client certificate.", what="the PEM client certificate", in_manifest=False)
    key: str | None = secret("PEM client private key.", what="the PEM client private key", in_manifest=False)


class KafkaSASL(SpecModel):
    mechanism: Literal["plain", "scram-sha-256", "scram-sha-512", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="plain", description="SASL mechanism.", json_schema_extra=crd(maxLength=32)
    )
    username: str | None = secret("SASL user name.", max_length=253, required=True)
    password: str | None = secret("SASL password.", max_length=1024, required=True)

    @model_validator(mode="after")
    def _credentials(self) -> KafkaSASL:
        require_one_of(self)
        return self


class SchemaRegistry(SpecModel):
    url: str | None = secret("Schema registry URL (Confluent wire format).", max_length=2048, required=True)
    basic_auth: BasicAuth | None = Field(default=None, description="Schema registry basic authentication.")
    tls: KafkaTLS | None = Field(default=None, description="TLS settings (TLS 1.2 or newer).")

    @model_validator(mode="after")
    def _url(self) -> SchemaRegistry:
        require_one_of(self)
        return self


class _KafkaCommon(SpecModel):
    brokers: list[str] | None = secret(
        "Bootstrap servers, host:port.",
        max_items=100,
        item_max_length=253,
        required=True,
        ref_note="The value is a comma-separated list.",
    )
    topic: str | None = secret("Topic to read (source) or write (sink).", max_length=249, required=True)
    consumer_group: str | None = secret(
        "consumer group.", default="dataflow-operator", max_length=249, side="source"
    )
    tls: KafkaTLS | None = Field(default=None, description="TLS settings (TLS 1.2 or newer).")
    sasl: KafkaSASL | None = Field(default=None, description="SASL authentication.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = Field(
        default=None,
        description="Security protocol. Default: from the other settings (`SASL_SSL` with `sasl` and `tls`, "
        "`SASL_PLAINTEXT` with `sasl` only, `SSL` with `tls` only, else `PLAINTEXT`). `SSL` and `SASL_SSL` without "
        "a `tls` block verify the brokers against the system's CA bundle.",
        json_schema_extra=crd(maxLength=16),
    )
    format: Literal["json", "avro"] = Field(
        default="json", description="payload format.", json_schema_extra=only("source", maxLength=8)
    )
    avro_schema: str | None = secret(
        "static Avro schema (JSON text), for `format: avro` without a registry.", max_length=65536, side="source"
    )
    avro_schema_file: str | None = Field(
        default=None,
        description="path of a static Avro schema file inside the processor container.",
        max_length=1024,
        json_schema_extra=only("source"),
    )
    schema_registry: SchemaRegistry | None = Field(
        default=None, description="Confluent schema registry for Avro records.", json_schema_extra=only("source")
    )
    raw_mode: bool = Field(
        default=False,
        description="wrap each payload as `{value, _metadata}` instead of parsing it as the record.",
        json_schema_extra=only("source"),
    )
    batch_size: int = Field(
        default=500, ge=1, le=MAX_BATCH, description="records per produce batch.", json_schema_extra=only("sink")
    )

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
        require_one_of(self)
        protocol = self.security_protocol
        if protocol is not None:
            if protocol.startswith("SASL_") != (self.sasl is not None):
                raise ValueError("securityProtocol: SASL_PLAINTEXT and SASL_SSL need sasl, PLAINTEXT and SSL take none")
            if self.tls is not None and protocol not in ("SSL", "SASL_SSL"):
                raise ValueError("securityProtocol: tls is set, so the protocol is SSL or SASL_SSL")
        return self


class KafkaSourceConfig(_KafkaCommon):
    """Kafka, read side."""

    side: ClassVar[Side | None] = "source"

    @model_validator(mode="after")
    def _avro(self) -> KafkaSourceConfig:
        if self.format == "avro" and not (
            self.avro_schema or self.ref("avro_schema") or self.avro_schema_file or self.schema_registry
        ):
            raise ValueError("format avro needs avroSchema, avroSchemaSecretRef, avroSchemaFile or schemaRegistry")
        return self


class KafkaSinkConfig(_KafkaCommon):
    """Kafka, write side (source-only fields accepted and ignored)."""

    side: ClassVar[Side | None] = "sink"


# ----------------------------------------------------------------------------- PostgreSQL


class _PostgresCommon(SpecModel):
    connection_string: str | None = secret(
        "libpq URI, `postgres://user:pass@host:5432/db`.", max_length=2048, required=True
    )
    table: str | None = secret(
        "Table, optionally `schema.table` (split at the first dot); a source with a custom `query` may omit it "
        "(it then only labels the records' metadata).",
        max_length=253,
        required=("sink",),
    )
    query: str | None = Field(
        default=None,
        description="custom SELECT run on every poll (see docs for making it incremental).",
        max_length=65536,
        json_schema_extra=only("source"),
    )
    poll_interval: int = Field(
        default=5, ge=1, le=MAX_POLL_SECONDS, description="seconds between polls.", json_schema_extra=only("source")
    )
    key_column: str = Field(
        default="id",
        max_length=63,
        description="increasing column the poll resumes from (the tie-breaker after changeTrackingColumn); its "
        "value is the records' metadata `id`.",
        json_schema_extra=only("source"),
    )
    order_by_column: str | None = _order_by_column_field()
    change_tracking_column: str | None = Field(
        default=None,
        max_length=63,
        description="timestamp column such as `updated_at`: rows are read in order of (changeTrackingColumn, "
        "keyColumn), so updated rows come again.",
        json_schema_extra=only("source"),
    )
    read_batch_size: int = Field(
        default=1000,
        ge=0,
        le=MAX_BATCH,
        description="rows per poll query; `0` means the default, 1000 (full pages are read back to back, so a "
        "poll still reads every new row).",
        json_schema_extra=only("source"),
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=MAX_BATCH,
        description="rows per COPY batch and transaction; a batch is written earlier once it holds its share of "
        "the pipeline's byte budget.",
        json_schema_extra=only("sink"),
    )
    batch_flush_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        le=MAX_FLUSH_SECONDS,
        description="flush a partial batch after this many seconds.",
        json_schema_extra=only("sink"),
    )
    auto_create_table: bool = Field(
        default=False, description="create the table when it does not exist.", json_schema_extra=only("sink")
    )
    upsert_mode: bool = Field(
        default=False, description="INSERT … ON CONFLICT (conflictKey) DO UPDATE.", json_schema_extra=only("sink")
    )
    conflict_key: str = Field(
        default="id",
        max_length=253,
        description="conflict column(s) for upsertMode, comma-separated; also the key a softDeleteColumn "
        "update finds its row by.",
        json_schema_extra=only("sink"),
    )
    upsert_strategy: Literal["always", "ifNewer"] = Field(
        default="always",
        description="with upsertMode: `always` updates the row on every conflict; `ifNewer` only when the "
        "record's upsertVersionColumn is greater than the row's (a row whose version is NULL is older than any).",
        json_schema_extra=only("sink", maxLength=8),
    )
    upsert_version_column: str | None = Field(
        default=None,
        max_length=63,
        description="version column (a number, timestamp or date) compared by `upsertStrategy: ifNewer`; every "
        "record must carry it, non-null.",
        json_schema_extra=only("sink"),
    )
    soft_delete_column: str | None = Field(
        default=None,
        max_length=63,
        description="column that marks a row deleted: for a record whose metadata `operation` is `delete` the row "
        "with its conflictKey gets now() (a timestamp or date column) or true (a boolean), instead of the record "
        "being written as a row; a later write of the key clears it (NULL, false).",
        json_schema_extra=only("sink"),
    )
    raw_mode: bool = Field(
        default=False,
        description="Source: emit `{value, _metadata}`; sink: write the record into a JSONB `value` column and its "
        "metadata into `_metadata`, instead of one JSONB `data` column.",
    )

    @field_validator("conflict_key")
    @classmethod
    def _conflict_key_syntax(cls, value: str) -> str:
        return check_column_list(value)

    @field_validator("key_column", "order_by_column", "change_tracking_column", "upsert_version_column",
                     "soft_delete_column")
    @classmethod
    def _column_syntax(cls, value: str | None) -> str | None:
        return check_column_name(value)

    @model_validator(mode="before")
    @classmethod
    def _order_by_column(cls, data: Any) -> Any:
        return order_by_is_key_column(data)


class PostgresSourceConfig(_PostgresCommon):
    """PostgreSQL, read side: a ``table`` to poll, or a custom ``query`` (then ``table`` is optional
    and only labels the records' metadata), as the admission policy allows."""

    side: ClassVar[Side | None] = "source"

    @model_validator(mode="after")
    def _required(self) -> PostgresSourceConfig:
        require_one_of(self, also=("table",) if self.query is None else ())
        if self.query is not None and not self.query.strip():
            raise ValueError("query: must not be empty")
        return self


class PostgresSinkConfig(_PostgresCommon):
    """PostgreSQL, write side."""

    side: ClassVar[Side | None] = "sink"

    @model_validator(mode="after")
    def _required(self) -> PostgresSinkConfig:
        require_one_of(self)
        if self.upsert_strategy == "ifNewer":
            if not self.upsert_mode:
                raise ValueError("upsertStrategy: ifNewer applies to upsertMode: true")
            if not self.upsert_version_column:
                raise ValueError("upsertVersionColumn: required when upsertStrategy is ifNewer")
        if self.soft_delete_column and not self.conflict_key.strip():  # the policy has the same rule
            raise ValueError("softDeleteColumn: needs conflictKey to find the row of a delete")
        return self


# ----------------------------------------------------------------------------- Trino


class Keycloak(SpecModel):
    server_url: str | None = secret("Keycloak base URL.", alias="serverURL", max_length=1024)
    realm: str | None = secret("Realm.", max_length=1024)
    client_id: str | None = secret("OAuth2 client id.", alias="clientID", max_length=1024)
    client_secret: str | None = secret("OAuth2 client secret.", max_length=1024)
    username: str | None = secret("User (password grant).", max_length=1024)
    password: str | None = secret("Password (password grant).", max_length=1024)
    token: str | None = secret("A static bearer token.", max_length=4096)


class _TrinoCommon(SpecModel):
    server_url: str | None = secret("Trino coordinator URL.", alias="serverURL", max_length=2048, required=True)
    catalog: str | None = secret("Catalog.", max_length=253, required=True)
    schema_: str | None = secret("Schema.", alias="schema", max_length=253, required=True)
    table: str | None = secret(
        "Table; a source with a custom `query` may omit it (the query names its tables, `catalog` and `schema` are "
        "its defaults).",
        max_length=253,
        required=("sink",),
    )
    query: str | None = Field(
        default=None,
        description="custom SELECT run on every poll.",
        max_length=65536,
        json_schema_extra=only("source"),
    )
    poll_interval: int = Field(
        default=5, ge=1, le=MAX_POLL_SECONDS, description="seconds between polls.", json_schema_extra=only("source")
    )
    key_column: str = Field(
        default="id",
        max_length=63,
        description='unique, increasing column the poll resumes from (its last acknowledged value is the '
        'checkpoint); `""` re-runs a custom query unchanged every poll.',
        json_schema_extra=only("source"),
    )
    order_by_column: str | None = _order_by_column_field()
    read_batch_size: int | None = Field(
        default=None,
        ge=0,
        le=MAX_BATCH,
        description="rows per poll query (the page size; full pages are read back to back). Default, or `0`: "
        "the processor's source batch size.",
        json_schema_extra=only("source"),
    )
    batch_size: int = Field(
        default=500, ge=1, le=MAX_BATCH, description="rows per INSERT.", json_schema_extra=only("sink")
    )
    upsert_mode: bool = Field(
        default=False,
        description="one `MERGE` per batch on conflictKey (matched rows updated, others inserted) instead of "
        "INSERT; the catalog's connector must support MERGE (checked at start).",
        json_schema_extra=only("sink"),
    )
    conflict_key: str = Field(
        default="id",
        max_length=253,
        description="key column(s) a MERGE matches rows on, comma-separated.",
        json_schema_extra=only("sink"),
    )
    batch_flush_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        le=MAX_FLUSH_SECONDS,
        description="flush a partial batch after this many seconds.",
        json_schema_extra=only("sink"),
    )
    auto_create_table: bool = Field(
        default=False, description="create the table when it does not exist.", json_schema_extra=only("sink")
    )
    raw_mode: bool = Field(
        default=False,
        description="Source: emit `{value, _metadata}` records; sink: store the whole record as JSON text in a "
        "`data` column.",
    )
    query_timeout_seconds: float = Field(
        default=30.0,
        ge=0.001,  # fractions are fine (the processor always took them); 0 would fail every request
        le=MAX_POLL_SECONDS,
        description="HTTP timeout of each Trino request, in seconds (fractions allowed).",
    )
    basic_auth: BasicAuth | None = Field(
        default=None, description="HTTP basic authentication to Trino (ignored when keycloak is set)."
    )
    keycloak: Keycloak | None = Field(
        default=None,
        description="Keycloak OAuth2: a static token, the password grant (refreshed before expiry) or client "
        "credentials.",
    )

    @field_validator("conflict_key")
    @classmethod
    def _conflict_key_syntax(cls, value: str) -> str:
        return check_column_list(value)

    @field_validator("key_column", "order_by_column")
    @classmethod
    def _column_syntax(cls, value: str | None) -> str | None:
        return check_column_name(value)

    @model_validator(mode="before")
    @classmethod
    def _order_by_column(cls, data: Any) -> Any:
        return order_by_is_key_column(data)


class TrinoSourceConfig(_TrinoCommon):
    """Trino, read side: a ``table`` to poll, or a custom ``query`` (then ``table`` is optional; the
    query names its own tables with the connection's ``catalog`` and ``schema`` as defaults)."""

    side: ClassVar[Side | None] = "source"

    @model_validator(mode="after")
    def _required(self) -> TrinoSourceConfig:
        if self.query is not None and not self.query.strip():
            raise ValueError("query: must not be empty")
        require_one_of(self, also=("table",) if self.query is None else ())
        return self


class TrinoSinkConfig(_TrinoCommon):
    """Trino, write side."""

    side: ClassVar[Side | None] = "sink"

    @model_validator(mode="after")
    def _required(self) -> TrinoSinkConfig:
        require_one_of(self)
        if self.upsert_mode and not self.conflict_key.strip():
            raise ValueError("conflictKey: must not be empty when upsertMode is on")
        return self


# ----------------------------------------------------------------------------- Nessie (Iceberg)


class _NessieCommon(SpecModel):
    base_url: str | None = secret(
        "Nessie server URL, e.g. `http://nessie:19120`.", alias="baseURL", max_length=2048, required=True
    )
    namespace: str | None = secret("Iceberg namespace.", max_length=253, required=True)
    table: str | None = secret("Iceberg table.", max_length=253, required=True)
    token: str | None = secret("Bearer token.", max_length=8192)
    bearer_token: str | None = Field(
        default=None,
        alias="bearerToken",
        max_length=8192,
        description="Another name for `token` (give one of the two); its Secret reference is `tokenSecretRef`.",
    )
    branch: str = Field(
        default="main", max_length=253, description="Nessie branch; every read and commit happens on it."
    )
    warehouse: str = Field(
        default="", max_length=253, description="Nessie warehouse name. Default: the server's default warehouse."
    )
    authentication_type: Literal["AUTO", "BEARER", "BASIC", "NONE"] = Field(
        default="AUTO",
        description="AUTO (bearer if a token is set, else basic if set, else none), BEARER, BASIC or NONE.",
        json_schema_extra=crd(maxLength=8),
    )
    basic_auth: BasicAuth | None = Field(default=None, description="Basic authentication to Nessie.")

    @model_validator(mode="before")
    @classmethod
    def _bearer_token_is_token(cls, data: Any) -> Any:
        # Declared as a field so that the CRD admits the name; read as `token` from here on.
        if isinstance(data, dict) and "bearerToken" in data:
            if data.get("token") is not None:
                raise ValueError("give token or bearerToken, not both (they are one field)")
            data = {k: v for k, v in data.items() if k != "bearerToken"} | {"token": data["bearerToken"]}
        return data

    @model_validator(mode="after")
    def _required(self) -> _NessieCommon:
        require_one_of(self)
        if self.authentication_type == "BEARER" and not (self.token or self.ref("token")):
            raise ValueError("authenticationType BEARER needs token (or bearerToken) or tokenSecretRef")
        if self.authentication_type == "BASIC":
            auth = self.basic_auth
            if (
                auth is None
                or not (auth.username or auth.ref("username"))
                or not (auth.password or auth.ref("password"))
            ):
                raise ValueError("authenticationType BASIC needs basicAuth username and password")
        return self


class _NessieFields(_NessieCommon):
    poll_interval: int = Field(
        default=10,
        ge=1,
        le=MAX_POLL_SECONDS,
        description="seconds between snapshot polls.",
        json_schema_extra=only("source"),
    )
    raw_mode: bool = Field(default=False, description="emit `{value, _metadata}` records.",
                           json_schema_extra=only("source"))
    batch_size: int = Field(
        default=10000, ge=1, le=MAX_BATCH, description="rows per Iceberg commit.", json_schema_extra=only("sink")
    )
    batch_flush_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        le=MAX_FLUSH_SECONDS,
        description="commit a partial batch after this many seconds.",
        json_schema_extra=only("sink"),
    )
    auto_create_table: bool = Field(
        default=False,
        description="create the namespace and table (schema inferred from the first batch).",
        json_schema_extra=only("sink"),
    )
    s3_endpoint: str | None = Field(
        default=None,
        alias="s3Endpoint",
        max_length=2048,
        description="S3 endpoint of the warehouse, e.g. `http://minio:9000`.",
    )
    s3_region: str = Field(default="us-east-1", alias="s3Region", max_length=64, description="S3 region.")
    access_key: str | None = secret("S3 access key id.", what="the S3 access key id", in_manifest=False)
    secret_access_key: str | None = secret(
        "S3 secret access key.", what="the S3 secret access key", in_manifest=False
    )

    @model_validator(mode="after")
    def _s3_keys(self) -> _NessieFields:
        if (self.ref("access_key") is None) != (self.ref("secret_access_key") is None):
            raise ValueError("accessKeySecretRef and secretAccessKeySecretRef must be given both or neither")
        return self


class NessieSourceConfig(_NessieFields):
    """Nessie (Iceberg), read side."""

    side: ClassVar[Side | None] = "source"


class NessieSinkConfig(_NessieFields):
    """Nessie (Iceberg), write side."""

    side: ClassVar[Side | None] = "sink"
