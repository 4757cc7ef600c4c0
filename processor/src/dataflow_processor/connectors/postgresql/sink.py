"""PostgreSQL sink: batched COPY or ``INSERT … SELECT … FROM unnest(…)`` in one transaction, bad
records isolated by bisection in savepoints (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from dataflow_processor.connectors.base import ConnectorContext, RecordFailure, Sink, TransientError, WriteResult
from dataflow_processor.connectors.postgresql.client import (
    RECORD_ERRORS,
    SCHEMA_ERRORS,
    error_type,
    release_sink_pool,
    shared_sink_pool,
    sqlstate_message,
)
from dataflow_processor.connectors.postgresql.table import TableName, quote_ident, table_columns
from dataflow_processor.connectors.postgresql.types import Column, json_text, row_builder
from dataflow_processor.connectors.registry import register_sink
from dataflow_processor.records import Record
from dataflow_processor.spec.connectors import PostgresSinkConfig

log = logging.getLogger("dataflow_processor.connectors.postgresql")

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
        row: list[Any] = [json_text(value)]
        if self.config.raw_mode and "_metadata" in self.columns:
            columns.append("_metadata")
            row.append(json_text(dict(record.metadata)))
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
                failures.append(RecordFailure(items[0][0], sqlstate_message(exc), error_type(exc)))
                return
            middle = len(items) // 2
            await self._isolate(conn, columns, items[:middle], failures)
            await self._isolate(conn, columns, items[middle:], failures)
