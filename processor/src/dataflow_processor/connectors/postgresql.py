"""PostgreSQL source (table polling with a durable cursor) and sink (batched COPY), on asyncpg.

**Sink.** Every PostgreSQL sink of a DataFlow (main, errors, route sinks) with the same
connection string shares one pool of at most :data:`SHARED_POOL_SIZE` connections. The table's
columns and types are read once at ``connect`` (and again only after the
server says the table changed). Two layouts, chosen from the table as the original did:

* *document*: the table has a ``jsonb`` column ``data`` — each record is written whole into it
  (in ``upsertMode`` the conflict-key columns are filled from the record's fields of the same
  name). ``autoCreateTable`` creates this layout: ``id bigserial primary key, data jsonb not null,
  created_at timestamptz default now()`` plus a GIN index on ``data``. With ``rawMode`` the columns
  are ``value jsonb`` and ``_metadata jsonb`` instead of ``data``.
* *columns*: every top-level key of a record is a column. A key the table does not have, or a
  value that cannot become the column's type, fails that record (errors sink); absent keys take
  the column default.

Each record's values are converted in Python to what the column's binary codec expects, so a bad
value is caught per record before anything is sent. A batch is then written in **one
transaction**: ``COPY … FROM STDIN (FORMAT binary)``, or, where COPY cannot express the write
(``upsertMode``, or a column type without a binary codec), one ``INSERT … SELECT … FROM
unnest($1::t1[], $2::t2[], …) [ON CONFLICT (key) DO UPDATE SET …]`` statement. If the server
rejects the batch with a data or constraint error (SQLSTATE classes 22 and 23), the transaction is
rolled back and redone with the failing records isolated by bisection inside savepoints: the bad
records are reported to the pipeline (→ errors sink), the rest is committed, still in one
transaction. Anything else (connection loss, timeouts, a dropped table) is transient: the pipeline
retries the batch. Identifiers are always quoted; values only ever travel as parameters or COPY data.

Without ``upsertMode`` a re-delivered record whose key already exists is a constraint violation
(errors sink), not silently skipped as in the original; use ``upsertMode`` for idempotent writes.

**Source.** Polls a table in the order of an increasing key — ``keyColumn`` (default ``id``) — or,
with ``changeTrackingColumn``, of ``(changeTrackingColumn, keyColumn)`` so updated rows are read
again. Pages of ``readBatchSize`` rows are read back to back; once a page comes back short the
source sleeps ``pollInterval`` seconds. A custom ``query`` (with or without ``table``) is run as is
every poll (the original's behaviour), read through a server-side cursor ``readBatchSize`` rows at
a time so a large result never sits in memory whole; if it references ``$1`` it is incremental:
``$1`` is bound to the last value read of the cursor column (``changeTrackingColumn``, else
``keyColumn``, else ``id``; ``NULL`` on the first poll), e.g. ``SELECT … WHERE $1::bigint IS NULL
OR id > $1 ORDER BY id LIMIT 1000``. The cursor of the last acknowledged row is saved in the
checkpoint store (:mod:`.checkpoint`), so a restart resumes after it. Records are numbered on
partition 0; the watermark maps back to the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import hashlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from dataflow_processor.connectors.base import (
    BatchPolicy,
    ConnectorContext,
    RecordFailure,
    Sink,
    TransientError,
    WriteResult,
)
from dataflow_processor.connectors.checkpoint import CheckpointStore
from dataflow_processor.connectors.polling import CursorColumnError, PollingSource
from dataflow_processor.connectors.registry import register_sink, register_source
from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime, to_json_value
from dataflow_processor.records import Record
from dataflow_processor.redaction import connect_error
from dataflow_processor.spec.connectors import PostgresSinkConfig, PostgresSourceConfig

log = logging.getLogger("dataflow_processor.connectors.postgresql")

# Errors that belong to the data of some record(s), not to the connection: class 22 and 23, plus
# what a client-side encoder raises for a value it cannot encode.
RECORD_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)
# The table changed under us: reload its columns before the retry.
SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.InvalidCachedStatementError,
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        """``table`` or ``schema.table`` (split at the first dot; no quoting syntax)."""
        schema, dot, name = text.partition(".")
        return cls(schema, name) if dot else cls(None, text)

    @property
    def quoted(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}" if self.schema else quote_ident(self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class PostgresConnectError(ConnectionError):
    """Connecting failed; the message never quotes the connection string (see :mod:`..redaction`)."""


async def open_pool(dsn: str, role: str, max_size: int = 1, **options: Any) -> asyncpg.Pool:
    """A pool for ``dsn``; a failure is reported without any text built from the DSN (asyncpg's
    parse errors quote pieces of it, a password among them)."""
    try:
        return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, **options)
    except Exception as exc:
        # "from None": the original error (and its text) must not reach a traceback in the log
        raise PostgresConnectError(connect_error(f"PostgreSQL ({role})", exc)) from None


SHARED_POOL_SIZE = 2
"""Connections at most of the pool that every sink of one DataFlow with the same connection string
shares (main, errors and route sinks): 32 route sinks to one database open 1-2 connections, not 34."""

@dataclass
class _SharedPool:
    opening: asyncio.Future[asyncpg.Pool]
    users: int = 0


_shared: dict[tuple[str, int], _SharedPool] = {}  # (dsn, event loop) → the pool being opened or open


async def shared_sink_pool(dsn: str, role: str) -> asyncpg.Pool:
    """The pool of the sinks writing to ``dsn`` (opened by the first; one more user after).

    The entry is made before the first await, so sinks connecting at once still share one pool.
    """
    key = (dsn, id(asyncio.get_running_loop()))
    entry = _shared.get(key)
    if entry is None:
        entry = _shared[key] = _SharedPool(asyncio.ensure_future(open_pool(dsn, role, max_size=SHARED_POOL_SIZE)))
    entry.users += 1
    try:
        return await asyncio.shield(entry.opening)
    except BaseException:
        entry.users -= 1
        if entry.users == 0 and _shared.get(key) is entry:
            del _shared[key]
        raise


async def release_sink_pool(pool: asyncpg.Pool) -> None:
    """One user less; the last one closes the pool."""
    for key, entry in list(_shared.items()):
        opening = entry.opening
        if opening.done() and not opening.cancelled() and not opening.exception() and opening.result() is pool:
            entry.users -= 1
            if entry.users > 0:
                return
            del _shared[key]
            break
    await pool.close()


def _sqlstate_message(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    text = str(exc).strip() or type(exc).__name__
    detail = getattr(exc, "detail", None)
    if detail:
        text = f"{text} ({detail})"
    return f"{text} [SQLSTATE {state}]" if state else text


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return "constraint_violation"
    return "invalid_data"


# ----------------------------------------------------------------------------- value conversion
# JSON value → what asyncpg's binary codec of the column type accepts. Raise ValueError/TypeError
# for a value that cannot be that type: the record goes to the errors sink.

Converter = Callable[[Any], Any]
_INT_RANGES = {"int2": INT_RANGES[16], "int4": INT_RANGES[32], "int8": INT_RANGES[64]}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _to_int(lo: int, hi: int) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        number = as_int(value)
        if not lo <= number <= hi:
            raise ValueError(f"integer {number} out of range")
        return number

    return convert


def _to_float(value: Any) -> Any:
    if type(value) is float or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _to_numeric(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    try:
        result = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    return result


def _to_text(value: Any) -> Any:
    if type(value) is str or value is None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _json_text(value)


def _to_bool(value: Any) -> Any:
    if type(value) is bool or value is None:
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "t", "f", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "t", "1", "yes"}
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected a boolean, got {value!r}")


def _to_json(value: Any) -> Any:
    return None if value is None else _json_text(value)


def _to_timestamptz(value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _to_timestamp(value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(value)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed


def _to_date(value: Any) -> Any:
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, str):
        text = value.strip()
        return dt.date.fromisoformat(text[:10]) if len(text) > 10 else dt.date.fromisoformat(text)
    raise TypeError(f"expected a date, got {type(value).__name__}")


def _to_uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _to_bytea(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string for bytea, got {type(value).__name__}")


def _last_value_cache(convert: Converter) -> Converter:
    """Remember the last conversion: a batch stamped by ``timestamp`` shares one string."""
    last_in: Any = None
    last_out: Any = None

    def cached(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is last_in and value is not None:
            return last_out
        result = convert(value)
        last_in, last_out = value, result
        return result

    return cached


_BINARY_CONVERTERS: dict[str, Converter] = {
    **{name: _to_int(lo, hi) for name, (lo, hi) in _INT_RANGES.items()},
    "float4": _to_float,
    "float8": _to_float,
    "numeric": _to_numeric,
    **dict.fromkeys(_TEXT_TYPES, _to_text),
    "bool": _to_bool,
    "json": _to_json,
    "jsonb": _to_json,
    "timestamptz": _to_timestamptz,
    "timestamp": _to_timestamp,
    "date": _to_date,
    "uuid": _to_uuid,
    "bytea": _to_bytea,
}


# The JSON type a column's binary codec takes as is: the generated row builder checks it inline and
# calls the converter only for other values (and ints only after a range check).
_NATIVE_TYPE: dict[str, type] = {
    **dict.fromkeys(_INT_RANGES, int),
    "float4": float,
    "float8": float,
    **dict.fromkeys(_TEXT_TYPES, str),
    "bool": bool,
}


def row_builder(keys: tuple[str, ...], columns: list[Column]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function ``value dict → row tuple`` for these keys, generated once per key set.

    Per value it is one dict lookup and an inline type check; a converter call only where the
    JSON type is not already what the codec takes. Names in the generated code are indexes into
    ``K`` (the keys) and ``C`` (the converters): no identifier or value ever becomes code.
    """
    lines = ["def build(value):"]
    names = []
    for i, column in enumerate(columns):
        name = f"v{i}"
        names.append(name)
        lines.append(f"    {name} = value[K[{i}]]")
        native = _NATIVE_TYPE.get(column.type_name)
        if native is int:
            lo, hi = _INT_RANGES[column.type_name]
            lines.append(f"    if type({name}) is not int or not {lo} <= {name} <= {hi}: {name} = C[{i}]({name})")
        elif native is not None:
            lines.append(f"    if type({name}) is not T[{i}]: {name} = C[{i}]({name})")
        else:
            lines.append(f"    {name} = C[{i}]({name})")
    lines.append(f"    return ({', '.join(names)},)")
    namespace: dict[str, Any] = {
        "K": keys,
        "C": tuple(c.converter for c in columns),
        "T": tuple(_NATIVE_TYPE.get(c.type_name) for c in columns),
    }
    exec(compile("\n".join(lines), "<postgresql row builder>", "exec"), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # pg_type.typname (e.g. int8, timestamptz, _int4)
    sql_type: str  # format_type() text, used for casts (e.g. "character varying(20)")
    writable: bool

    @property
    def binary(self) -> bool:
        """asyncpg's binary COPY can carry this type from our converted values."""
        return self.type_name in _BINARY_CONVERTERS

    @property
    def converter(self) -> Converter:
        if self.type_name in ("timestamptz", "timestamp"):  # one converter (and cache) per column
            return _last_value_cache(_BINARY_CONVERTERS[self.type_name])
        # other types (enums, arrays, inet, interval…) travel as text and are cast by the server
        return _BINARY_CONVERTERS.get(self.type_name, _to_text)

    @property
    def param_type(self) -> str:
        return f"{self.sql_type}[]" if self.binary else "text[]"


_COLUMNS_SQL = """
SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.attgenerated = ''
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


async def table_columns(conn: asyncpg.Connection, table: TableName) -> dict[str, Column] | None:
    """The table's columns by name, or ``None`` if it does not exist."""
    oid = await conn.fetchval("SELECT to_regclass($1)::oid", table.quoted)
    if oid is None:
        return None
    rows = await conn.fetch(_COLUMNS_SQL, oid)
    return {name: Column(name, typname, sql_type, writable) for name, typname, sql_type, writable in rows}


# ----------------------------------------------------------------------------- sink


# The records of a batch that go to one column tuple: their indexes in the batch and their rows.
_Group = tuple[list[int], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class _Layout:
    """How records with one key set are written: target columns in table order and converters."""

    columns: tuple[str, ...]  # the record's keys, in table column order
    build: Callable[[dict[str, Any]], tuple[Any, ...]]


class _Plan:
    """The statements for one column tuple (cached per column tuple)."""

    def __init__(self, sink: PostgresSink, columns: tuple[str, ...]) -> None:
        cols = [sink.columns[c] for c in columns]
        self.columns = columns
        self.copy = not sink.config.upsert_mode and all(c.binary for c in cols)
        names = ", ".join(quote_ident(c) for c in columns)
        params = ", ".join(f"${i}::{c.param_type}" for i, c in enumerate(cols, 1))
        aliases = ", ".join(f"c{i}" for i in range(len(cols)))
        select = ", ".join(f"u.c{i}" if c.binary else f"u.c{i}::{c.sql_type}" for i, c in enumerate(cols))
        sql = f"INSERT INTO {sink.table.quoted} ({names}) SELECT {select} FROM unnest({params}) AS u({aliases})"
        self.key_positions: tuple[int, ...] = ()
        if sink.config.upsert_mode:
            keys = [k for k in sink.conflict_key if k in columns]
            if len(keys) == len(sink.conflict_key):
                self.key_positions = tuple(columns.index(k) for k in keys)
                target = ", ".join(quote_ident(k) for k in keys)
                updates = [c for c in columns if c not in keys]
                if updates:
                    assignments = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
                    sql += f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
                else:
                    sql += f" ON CONFLICT ({target}) DO NOTHING"
        self.insert_sql = sql


@register_sink("postgresql")
class PostgresSink(Sink):
    type_name = "postgresql"

    def __init__(self, config: PostgresSinkConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.batch_size = config.batch_size
        self.flush_interval = config.batch_flush_interval_seconds
        self.table = TableName.parse(config.table or "")
        self.conflict_key = tuple(k.strip() for k in config.conflict_key.split(",") if k.strip())
        self.pool: asyncpg.Pool | None = None
        self.columns: dict[str, Column] = {}
        self.document_column: str | None = None  # "data" / "value" in the document layout
        self._layouts: dict[tuple[str, ...], _Layout | str] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._stale = True

    async def connect(self) -> None:
        if not self.config.connection_string:
            raise ValueError("postgresql sink: connectionString is not resolved")
        self.pool = await shared_sink_pool(self.config.connection_string, self.context.role)
        async with self.pool.acquire() as conn:
            await self._load_table(conn)

    async def _load_table(self, conn: asyncpg.Connection) -> None:
        columns = await table_columns(conn, self.table)
        if columns is None and self.config.auto_create_table:
            await self._create_table(conn)
            columns = await table_columns(conn, self.table)
        if columns is None:
            raise TransientError(f"table {self.table} does not exist (set autoCreateTable to create it)")
        self.columns = columns
        doc = "value" if self.config.raw_mode else "data"
        column = columns.get(doc)
        self.document_column = doc if column is not None and column.type_name == "jsonb" else None
        if self.config.raw_mode and self.document_column is None:
            raise ValueError(f"rawMode needs a jsonb column 'value' in table {self.table}")
        self._layouts.clear()
        self._plans.clear()
        self._stale = False
        log.info(
            "postgresql sink table %s: %d columns, %s layout",
            self.table,
            len(columns),
            "document" if self.document_column else "columns",
        )

    async def _create_table(self, conn: asyncpg.Connection) -> None:
        if self.config.raw_mode:
            body = "value JSONB NOT NULL, _metadata JSONB"
            indexed = "value"
        else:
            body = "data JSONB NOT NULL"
            indexed = "data"
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {self.table.quoted} "
            f"(id BIGSERIAL PRIMARY KEY, {body}, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        # UniqueViolation / DuplicateTable: created concurrently by another processor
        with contextlib.suppress(asyncpg.exceptions.UniqueViolationError, asyncpg.exceptions.DuplicateTableError):
            await conn.execute(ddl)
        log.info("created table %s (%s)", self.table, "rawMode" if self.config.raw_mode else "jsonb data")
        index = quote_ident(f"idx_{self.table.name}_{indexed}"[:63])
        try:
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self.table.quoted} USING GIN ({indexed})")
        except asyncpg.PostgresError as exc:
            log.warning("creating the GIN index on %s failed (ignored): %s", self.table, exc)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await release_sink_pool(pool)

    # -------------------------------------------------------------- preparing rows

    def _layout(self, keys: tuple[str, ...]) -> _Layout | str:
        """The layout for records with these keys (columns layout), or the error text for them."""
        found = self._layouts.get(keys)
        if found is not None:
            return found
        unknown = [k for k in keys if k not in self.columns]
        readonly = [k for k in keys if k in self.columns and not self.columns[k].writable]
        if unknown:
            result: _Layout | str = f"column(s) {', '.join(map(repr, unknown))} not in table {self.table}"
        elif readonly:
            result = f"column(s) {', '.join(map(repr, readonly))} of table {self.table} are generated"
        elif not keys:
            result = "empty record"
        else:
            ordered = tuple(c for c in self.columns if c in keys)
            result = _Layout(ordered, row_builder(ordered, [self.columns[c] for c in ordered]))
        self._layouts[keys] = result
        return result

    def _document_row(self, record: Record) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        value = record.value or {}
        doc = self.document_column
        assert doc is not None
        columns: list[str] = [doc]
        row: list[Any] = [_json_text(value)]
        if self.config.raw_mode and "_metadata" in self.columns:
            columns.append("_metadata")
            row.append(_json_text(dict(record.metadata)))
        if self.config.upsert_mode:
            for key in self.conflict_key:
                if key in value and key in self.columns and key not in columns:
                    columns.append(key)
                    row.append(self.columns[key].converter(value[key]))
        return tuple(columns), tuple(row)

    def _prepare(self, batch: list[Record], failures: list[RecordFailure]) -> dict[tuple[str, ...], _Group]:
        """Group the batch by column tuple: ``{columns: (indexes, rows)}``; bad records to ``failures``."""
        groups: dict[tuple[str, ...], _Group] = {}
        if self.document_column is not None:
            for index, record in enumerate(batch):
                try:
                    columns, row = self._document_row(record)
                except RECORD_ERRORS as exc:
                    failures.append(RecordFailure(index, f"bad value: {exc}"))
                    continue
                group = groups.setdefault(columns, ([], []))
                group[0].append(index)
                group[1].append(row)
            return groups
        layouts = self._layouts
        # Records of a batch mostly share one key set. While they do, a record is checked with its
        # key count and the row builder's lookups (all of the layout's keys found + as many keys =
        # the same key set); any other record takes the full path.
        size = -1
        build: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        indexes: list[int] = []
        rows: list[tuple[Any, ...]] = []
        for index, record in enumerate(batch):
            value = record.value or {}
            if len(value) == size and build is not None:
                try:
                    row = build(value)
                except KeyError:
                    pass
                except RECORD_ERRORS as exc:
                    failures.append(RecordFailure(index, f"bad value: {exc}"))
                    continue
                else:
                    indexes.append(index)
                    rows.append(row)
                    continue
            keys = tuple(value)
            layout = layouts.get(keys) or self._layout(keys)
            if isinstance(layout, str):
                failures.append(RecordFailure(index, layout))
                continue
            size, build = len(keys), layout.build
            indexes, rows = groups.setdefault(layout.columns, ([], []))
            try:
                row = build(value)
            except RECORD_ERRORS as exc:
                failures.append(RecordFailure(index, f"bad value: {exc}"))
                continue
            indexes.append(index)
            rows.append(row)
        return groups

    def _plan(self, columns: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(columns)
        if plan is None:
            plan = self._plans[columns] = _Plan(self, columns)
        return plan

    # -------------------------------------------------------------- writing

    async def write(self, batch: list[Record]) -> WriteResult:
        if self.pool is None:
            raise TransientError("postgresql sink is not connected")
        async with self.pool.acquire() as conn:
            if self._stale:
                await self._load_table(conn)
            failures: list[RecordFailure] = []
            groups = {columns: group for columns, group in self._prepare(batch, failures).items() if group[0]}
            if self.config.upsert_mode:
                groups = {columns: self._last_per_key(columns, group) for columns, group in groups.items()}
            try:
                try:
                    async with conn.transaction():
                        for columns, (_, rows) in groups.items():
                            await self._write_rows(conn, columns, rows)
                except RECORD_ERRORS:
                    # somebody's value was refused: redo the batch, isolating the bad records
                    async with conn.transaction():
                        for columns, (indexes, rows) in groups.items():
                            await self._isolate(conn, columns, list(zip(indexes, rows, strict=True)), failures)
            except SCHEMA_ERRORS as exc:
                self._stale = True
                raise TransientError(f"table {self.table} changed: {exc}") from exc
        failures.sort(key=lambda f: f.index)
        return WriteResult(failures)

    def _last_per_key(self, columns: tuple[str, ...], group: _Group) -> _Group:
        """Upsert: one row per conflict key (the last one wins, as it would one statement later)."""
        positions = self._plan(columns).key_positions
        if not positions:
            return group
        last: dict[tuple[Any, ...], Any] = {}
        keyless = []
        for item in zip(*group, strict=True):
            key = tuple(item[1][p] for p in positions)
            if any(k is None for k in key):
                keyless.append(item)
            else:
                last.pop(key, None)
                last[key] = item
        kept = sorted([*keyless, *last.values()], key=lambda item: item[0])
        return [index for index, _ in kept], [row for _, row in kept]

    async def _write_rows(
        self, conn: asyncpg.Connection, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        plan = self._plan(columns)
        if plan.copy:
            await conn.copy_records_to_table(
                self.table.name, records=rows, columns=list(columns), schema_name=self.table.schema
            )
        else:
            arrays = [list(values) for values in zip(*rows, strict=True)]
            await conn.execute(plan.insert_sql, *arrays)

    async def _isolate(
        self, conn: asyncpg.Connection, columns: tuple[str, ...], items: list[Any], failures: list[RecordFailure]
    ) -> None:
        """Write ``items`` inside a savepoint; on a record error, bisect until single bad records."""
        try:
            async with conn.transaction():
                await self._write_rows(conn, columns, [row for _, row in items])
        except RECORD_ERRORS as exc:
            if len(items) == 1:
                failures.append(RecordFailure(items[0][0], _sqlstate_message(exc), _error_type(exc)))
                return
            middle = len(items) // 2
            await self._isolate(conn, columns, items[:middle], failures)
            await self._isolate(conn, columns, items[middle:], failures)


# ----------------------------------------------------------------------------- source


def row_to_json(value: Any) -> Any:
    """A value read from PostgreSQL as a JSON-compatible value (the :mod:`.values` rule)."""
    return to_json_value(value)


def encode_cursor(value: Any) -> Any:
    """A cursor value as JSON that :func:`decode_cursor` turns back into the same Python type."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    raise TypeError(f"cannot keep a {type(value).__name__} as a cursor")


def decode_cursor(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind == "datetime":
            return dt.datetime.fromisoformat(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "decimal":
            return decimal.Decimal(text)
        if kind == "uuid":
            return uuid.UUID(text)
    return value


PARTITION = 0

Cursor = tuple[Any, ...]  # the cursor columns' values of the last row read


@register_source("postgresql")
class PostgresSource(PollingSource[asyncpg.Record, Cursor]):
    type_name = "postgresql"
    partition = PARTITION
    first_offset = 1

    def __init__(
        self, config: PostgresSourceConfig, context: ConnectorContext, store: CheckpointStore | None = None
    ) -> None:
        super().__init__(context)
        self.config = config
        self.poll_interval = config.poll_interval
        self.table = TableName.parse(config.table or "")
        self.store = store
        self.pool: asyncpg.Pool | None = None
        self.incremental = config.query is None or "$1" in config.query
        self.key_column = config.key_column or "id"
        # cursor columns: (changeTracking, key) | (key,) | (cursor column of an incremental query,)
        if config.query is not None:
            self.cursor_columns: tuple[str, ...] = (config.change_tracking_column or self.key_column,)
        elif config.change_tracking_column:
            self.cursor_columns = (config.change_tracking_column, self.key_column)
        else:
            self.cursor_columns = (self.key_column,)
        self._sql = ""
        self._sql_first = ""

    # -------------------------------------------------------------- hooks: what the cursor is

    @property
    def tracks_position(self) -> bool:
        return self.incremental

    @property
    def reads_one_page(self) -> bool:
        return self.config.query is None  # a table poll is one LIMIT query; a custom query is the whole poll

    def page_size(self, policy: BatchPolicy) -> int:
        return self.config.read_batch_size

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"table": str(self.table), "columns": list(self.cursor_columns)}
        if self.config.query is not None:
            identity["query"] = hashlib.sha256(self.config.query.encode()).hexdigest()[:16]
        return identity

    def cursor_of(self, row: asyncpg.Record) -> Cursor:
        try:
            return tuple(row[c] for c in self.cursor_columns)
        except KeyError:
            raise CursorColumnError(
                f"the query's rows have no column {self.cursor_columns[0]!r} to continue from"
            ) from None

    def encode_cursor(self, cursor: Cursor) -> Any:
        return [encode_cursor(v) for v in cursor]

    def decode_cursor(self, stored: Any) -> Cursor | None:
        if isinstance(stored, list) and len(stored) == len(self.cursor_columns):
            return tuple(decode_cursor(v) for v in stored)
        return None

    def to_record(self, row: asyncpg.Record) -> tuple[dict[str, Any], Mapping[str, Any]]:
        value = {k: to_json_value(v) for k, v in row.items()}
        metadata = {"table": str(self.table) if self.config.table else "", "id": value.get(self.key_column)}
        if self.config.raw_mode:
            value = {"value": value, "_metadata": metadata}
        return value, metadata

    def retryable(self, exc: Exception) -> bool:
        return isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError))

    def describe(self) -> str:
        return self.config.table or "query"

    # -------------------------------------------------------------- hooks: the server

    async def open(self) -> None:
        if not self.config.connection_string:
            raise ValueError("postgresql source: connectionString is not resolved")

        async def init(conn: asyncpg.Connection) -> None:
            for name in ("json", "jsonb"):
                await conn.set_type_codec(name, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog")

        self.pool = await open_pool(self.config.connection_string, self.context.role, init=init)
        if self.config.query is None:
            async with self.pool.acquire() as conn:
                columns = await table_columns(conn, self.table)
            if columns is None:
                raise ValueError(f"table {self.table} does not exist")
            missing = [c for c in self.cursor_columns if c not in columns]
            if missing:
                raise ValueError(
                    f"table {self.table} has no column {missing[0]!r}: set keyColumn (a unique, increasing key)"
                    + (" used as tie-breaker of changeTrackingColumn" if self.config.change_tracking_column else "")
                )
            order = ", ".join(quote_ident(c) for c in self.cursor_columns)
            params = ", ".join(f"${i}" for i in range(1, len(self.cursor_columns) + 1))
            base = f"SELECT * FROM {self.table.quoted}"
            limit = f"LIMIT {int(self.config.read_batch_size)}"
            self._sql_first = f"{base} ORDER BY {order} {limit}"
            self._sql = f"{base} WHERE ({order}) > ({params}) ORDER BY {order} {limit}"
            if len(self.cursor_columns) == 1:
                self._sql = f"{base} WHERE {order} > $1 ORDER BY {order} {limit}"

    async def shut(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def pages(self, after: Cursor | None, page_size: int) -> AsyncGenerator[list[asyncpg.Record], None]:
        """One poll's rows, in pages of at most ``readBatchSize``.

        A table poll is one ``LIMIT`` query. A custom query is read through a server-side cursor
        inside a read-only transaction, ``readBatchSize`` rows at a time, so a query without a
        ``LIMIT`` over a large table never sits in memory whole.
        """
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            if self.config.query is None:
                if after is None:
                    yield await conn.fetch(self._sql_first)
                else:
                    yield await conn.fetch(self._sql, *after)
                return
            args = [after[0] if after else None] if self.incremental else []
            async with conn.transaction(readonly=True):
                cursor = await conn.cursor(self.config.query, *args)
                while True:
                    rows = await cursor.fetch(page_size)
                    if rows:
                        yield rows
                    if len(rows) < page_size:
                        return
