"""PostgreSQL source: a table (or a query) polled by its cursor columns on the polling base
(:mod:`..polling`); see the package docstring."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import asyncpg
import orjson

from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.checkpoint import CheckpointStore
from dataflow_processor.connectors.polling import CursorColumnError, PollingSource
from dataflow_processor.connectors.postgresql.client import open_pool
from dataflow_processor.connectors.postgresql.table import TableName, quote_ident, table_columns
from dataflow_processor.connectors.postgresql.types import decode_cursor, encode_cursor, json_text
from dataflow_processor.connectors.registry import register_source
from dataflow_processor.connectors.values import to_json_value
from dataflow_processor.spec.connectors import PostgresSourceConfig

# ----------------------------------------------------------------------------- source


PARTITION = 0
DEFAULT_READ_BATCH = 1000
"""Rows per page for ``readBatchSize: 0`` (the Go project's "no limit": full pages are read back to
back, so every new row is still read in the same poll, without the whole result in memory)."""

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
        self.read_batch_size = config.read_batch_size or DEFAULT_READ_BATCH
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
        return self.read_batch_size

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
                await conn.set_type_codec(name, encoder=json_text, decoder=orjson.loads, schema="pg_catalog")

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
            limit = f"LIMIT {int(self.read_batch_size)}"
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
