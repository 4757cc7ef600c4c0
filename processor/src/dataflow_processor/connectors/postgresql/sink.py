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
from dataflow_processor.connectors.upsert import last_per_key
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


# Types whose order is what "newer" means for upsertStrategy ifNewer (PostgreSQL's own `>` compares).
VERSION_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "timestamp", "timestamptz", "date"})
# Types a soft delete can mark: a moment (now()) or a flag (true); a later write clears them.
SOFT_DELETE_TYPES = frozenset({"timestamp", "timestamptz", "date", "bool"})

ROWS, DELETES = "rows", "deletes"


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
        rows = f"unnest({params}) AS u({aliases})"
        self.key_positions: tuple[int, ...] = ()
        conflict = ""
        keys = [k for k in sink.conflict_key if k in columns]
        version = sink.version_column
        if sink.config.upsert_mode and len(keys) == len(sink.conflict_key):
            self.key_positions = tuple(columns.index(k) for k in keys)
            target = ", ".join(quote_ident(k) for k in keys)
            assignments = [f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in columns if c not in keys]
            mark = sink.soft_delete_column
            if mark is not None and mark not in columns:  # written again: the row is live
                assignments.append(f"{quote_ident(mark)} = {sink.soft_delete_clear}")
            if assignments:
                conflict = f" ON CONFLICT ({target}) DO UPDATE SET {', '.join(assignments)}"
                if version is not None:
                    # only newer wins: equal or older leaves the row as it is; a NULL stored version is oldest
                    v = quote_ident(version)
                    conflict += f" WHERE t.{v} IS NULL OR t.{v} < EXCLUDED.{v}"
            else:
                conflict = f" ON CONFLICT ({target}) DO NOTHING"
        if version is not None and self.key_positions:
            # One row per key per statement (ON CONFLICT cannot touch a row twice): the greatest version
            # of the batch, the first of equals, as one write after the other would leave it. Rows with a
            # NULL key never conflict and are all kept.
            partition = ", ".join(f"u.c{p}" for p in self.key_positions)
            nulls = " OR ".join(f"u.c{p} IS NULL" for p in self.key_positions)
            order = f"u.c{columns.index(version)} DESC, u.ord"
            rows = (
                f"(SELECT u.*, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS rn "
                f"FROM unnest({params}) WITH ORDINALITY AS u({aliases}, ord)) AS u WHERE u.rn = 1 OR {nulls}"
            )
        self.sql = f"INSERT INTO {sink.table.quoted} AS t ({names}) SELECT {select} FROM {rows}{conflict}"


class _DeletePlan:
    """The soft delete of a run of delete records: one UPDATE that marks the rows of their keys.

    ``columns`` are the conflict-key columns, then the version column under ``ifNewer``: a delete
    applies when the row's version is NULL or not newer than the record's (a delete event carries
    the version of the row it deletes).
    """

    copy = False
    key_positions: tuple[int, ...] = ()

    def __init__(self, sink: PostgresSink, columns: tuple[str, ...]) -> None:
        cols = [sink.columns[c] for c in columns]
        self.columns = columns
        params = ", ".join(f"${i}::{c.param_type}" for i, c in enumerate(cols, 1))
        aliases = ", ".join(f"c{i}" for i in range(len(cols)))

        def value(i: int) -> str:
            return f"u.c{i}" if cols[i].binary else f"u.c{i}::{cols[i].sql_type}"

        match = [f"t.{quote_ident(k)} = {value(i)}" for i, k in enumerate(sink.conflict_key)]
        if sink.version_column is not None:
            v = quote_ident(sink.version_column)
            match.append(f"(t.{v} IS NULL OR t.{v} <= {value(len(sink.conflict_key))})")
        mark = quote_ident(sink.soft_delete_column or "")
        self.sql = (
            f"UPDATE {sink.table.quoted} AS t SET {mark} = {sink.soft_delete_set} "
            f"FROM unnest({params}) AS u({aliases}) WHERE {' AND '.join(match)}"
        )


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
        self.version_column = config.upsert_version_column if config.upsert_strategy == "ifNewer" else None
        self.soft_delete_column = config.soft_delete_column or None
        self.soft_delete_set, self.soft_delete_clear = "now()", "NULL"
        self.pool: asyncpg.Pool | None = None
        self.columns: dict[str, Column] = {}
        self.document_column: str | None = None  # "data" / "value" in the document layout
        self._layouts: dict[tuple[str, ...], _Layout | str] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan | _DeletePlan] = {}
        self._stale = True
        # outcomes no failure reports (tests, logs): rows ifNewer kept as they were, deletes that found no row
        self.stale_records = 0
        self.deletes_unmatched = 0
        if config.upsert_version_column and self.version_column is None:
            log.warning(
                "postgresql sink %s: upsertVersionColumn is set but upsertStrategy is always, so it is not "
                "compared (set upsertStrategy: ifNewer)",
                self.table,
            )

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
        self._check_columns(columns)
        self._layouts.clear()
        self._plans.clear()
        self._stale = False
        log.info(
            "postgresql sink table %s: %d columns, %s layout",
            self.table,
            len(columns),
            "document" if self.document_column else "columns",
        )

    def _check_columns(self, columns: dict[str, Column]) -> None:
        """The columns upsertVersionColumn and softDeleteColumn name exist and have a usable type."""
        version = self.version_column
        if version is not None:
            column = columns.get(version)
            if column is None:
                raise ValueError(f"upsertVersionColumn: table {self.table} has no column {version!r}")
            if column.type_name not in VERSION_TYPES:
                raise ValueError(
                    f"upsertVersionColumn: column {version!r} of table {self.table} is {column.sql_type}; "
                    "a version is a number, a timestamp or a date"
                )
        mark = self.soft_delete_column
        if mark is not None:
            column = columns.get(mark)
            if column is None or not column.writable:
                raise ValueError(f"softDeleteColumn: table {self.table} has no writable column {mark!r}")
            if column.type_name not in SOFT_DELETE_TYPES:
                raise ValueError(
                    f"softDeleteColumn: column {mark!r} of table {self.table} is {column.sql_type}; "
                    "it is a timestamp, a date (set to now()) or a boolean (set to true)"
                )
            flag = column.type_name == "bool"
            self.soft_delete_set, self.soft_delete_clear = ("true", "false") if flag else ("now()", "NULL")
            missing = [k for k in self.conflict_key if k not in columns]
            if missing:
                raise ValueError(
                    f"softDeleteColumn: the rows of deletes are found by conflictKey, and table {self.table} "
                    f"has no column {missing[0]!r}"
                )

    async def _create_table(self, conn: asyncpg.Connection) -> None:
        if self.config.raw_mode:
            body = "value JSONB NOT NULL, _metadata JSONB"
            indexed = "value"
        else:
            body = "data JSONB NOT NULL"
            indexed = "data"
        # the version and soft-delete columns as the Go project's tables had them (updated_at, deleted_at)
        for extra in dict.fromkeys(c for c in (self.version_column, self.soft_delete_column) if c):
            if extra not in ("id", "created_at", indexed, "_metadata"):
                body += f", {quote_ident(extra)} TIMESTAMPTZ"
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
        elif self.version_column is not None and self.version_column not in keys:
            result = self._no_version
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
            extra = (*self.conflict_key, self.version_column) if self.version_column else self.conflict_key
            for key in extra:
                if key in value and key in self.columns and key not in columns:
                    columns.append(key)
                    row.append(self.columns[key].converter(value[key]))
        return tuple(columns), tuple(row)

    @property
    def _no_version(self) -> str:
        """Why a record cannot be written under ifNewer: it has no version to compare."""
        return (
            f"upsertVersionColumn {self.version_column!r} is missing or null; with upsertStrategy ifNewer every "
            "record needs a version"
        )

    def _version_missing(self, columns: tuple[str, ...], row: tuple[Any, ...]) -> str | None:
        """Under ifNewer, why this row cannot be compared (no version, or a NULL one); else None."""
        version = self.version_column
        if version is not None and (version not in columns or row[columns.index(version)] is None):
            return self._no_version
        return None

    def _steps(self, batch: list[Record], failures: list[RecordFailure]) -> list[tuple[str, tuple[str, ...], _Group]]:
        """The batch as writes in order: runs of rows (grouped by column tuple) and runs of deletes.

        Without softDeleteColumn the whole batch is one run of rows, and the records' metadata is not
        read (a Kafka record builds it only when asked).
        """
        if self.soft_delete_column is None:
            return [(ROWS, c, g) for c, g in self._prepare(list(enumerate(batch)), failures).items() if g[0]]
        steps: list[tuple[str, tuple[str, ...], _Group]] = []
        run: list[tuple[int, Record]] = []
        deleting = False
        for item in [*enumerate(batch), None]:
            kind = None if item is None else item[1].metadata.get("operation") == "delete"
            if run and kind != deleting:
                if deleting:
                    group = self._prepare_deletes(run, failures)
                    if group[0]:
                        steps.append((DELETES, self._delete_columns, group))
                else:
                    steps.extend((ROWS, c, g) for c, g in self._prepare(run, failures).items() if g[0])
                run = []
            if item is not None:
                deleting = bool(kind)
                run.append(item)
        return steps

    @property
    def _delete_columns(self) -> tuple[str, ...]:
        return (*self.conflict_key, self.version_column) if self.version_column else self.conflict_key

    def _prepare_deletes(self, items: list[tuple[int, Record]], failures: list[RecordFailure]) -> _Group:
        """The key (and version) of each delete record, converted to the columns' types."""
        columns = [self.columns[c] for c in self._delete_columns]
        indexes: list[int] = []
        rows: list[tuple[Any, ...]] = []
        for index, record in items:
            value = record.value or {}
            missing = [c.name for c in columns if value.get(c.name) is None]
            if missing:
                failures.append(
                    RecordFailure(
                        index,
                        f"delete record: field {missing[0]!r} is missing or null; a soft delete finds its row by "
                        "conflictKey" + (" and compares upsertVersionColumn" if self.version_column else ""),
                    )
                )
                continue
            try:
                row = tuple(c.converter(value[c.name]) for c in columns)
            except RECORD_ERRORS as exc:
                failures.append(RecordFailure(index, f"bad value: {exc}"))
                continue
            indexes.append(index)
            rows.append(row)
        return indexes, rows

    def _prepare(
        self, items: list[tuple[int, Record]], failures: list[RecordFailure]
    ) -> dict[tuple[str, ...], _Group]:
        """Group records by column tuple: ``{columns: (indexes, rows)}``; bad records to ``failures``."""
        groups: dict[tuple[str, ...], _Group] = {}
        if self.document_column is not None:
            for index, record in items:
                try:
                    columns, row = self._document_row(record)
                except RECORD_ERRORS as exc:
                    failures.append(RecordFailure(index, f"bad value: {exc}"))
                    continue
                why = self._version_missing(columns, row)
                if why is not None:
                    failures.append(RecordFailure(index, why))
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
        version = self.version_column
        at = -1  # the version's place in the current layout's rows (ifNewer: a NULL there is refused)
        for index, record in items:
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
                    if at >= 0 and row[at] is None:
                        failures.append(RecordFailure(index, self._no_version))
                        continue
                    indexes.append(index)
                    rows.append(row)
                    continue
            keys = tuple(value)
            layout = layouts.get(keys) or self._layout(keys)
            if isinstance(layout, str):
                failures.append(RecordFailure(index, layout))
                continue
            size, build = len(keys), layout.build
            at = layout.columns.index(version) if version is not None else -1
            indexes, rows = groups.setdefault(layout.columns, ([], []))
            try:
                row = build(value)
            except RECORD_ERRORS as exc:
                failures.append(RecordFailure(index, f"bad value: {exc}"))
                continue
            if at >= 0 and row[at] is None:
                failures.append(RecordFailure(index, self._no_version))
                continue
            indexes.append(index)
            rows.append(row)
        return groups

    def _plan(self, kind: str, columns: tuple[str, ...]) -> _Plan | _DeletePlan:
        plan = self._plans.get((kind, columns))
        if plan is None:
            plan = self._plans[(kind, columns)] = (_Plan if kind == ROWS else _DeletePlan)(self, columns)
        return plan

    # -------------------------------------------------------------- writing

    async def write(self, batch: list[Record]) -> WriteResult:
        if self.pool is None:
            raise TransientError("postgresql sink is not connected")
        async with self.pool.acquire() as conn:
            if self._stale:
                await self._load_table(conn)
            failures: list[RecordFailure] = []
            steps = self._steps(batch, failures)
            if self.config.upsert_mode and self.version_column is None:
                steps = [(kind, c, self._last_per_key(c, g) if kind == ROWS else g) for kind, c, g in steps]
            tally = _Tally()
            try:
                try:
                    async with conn.transaction():
                        for kind, columns, (_, rows) in steps:
                            await self._write_rows(conn, kind, columns, rows, tally=tally)
                except RECORD_ERRORS:
                    # somebody's value was refused: redo the batch, isolating the bad records
                    tally = _Tally()
                    async with conn.transaction():
                        for kind, columns, (indexes, rows) in steps:
                            items = list(zip(indexes, rows, strict=True))
                            await self._isolate(conn, kind, columns, items, failures, tally=tally)
            except SCHEMA_ERRORS as exc:
                self._stale = True
                raise TransientError(f"table {self.table} changed: {exc}") from exc
        self._count(tally)
        failures.sort(key=lambda f: f.index)
        return WriteResult(failures)

    def _count(self, tally: _Tally) -> None:
        """Log what a committed batch did that no failure reports (kept older versions, unmatched deletes)."""
        self.stale_records += tally.stale
        self.deletes_unmatched += tally.unmatched
        if tally.stale:
            log.info(
                "postgresql sink %s: %d record(s) not newer than their row's %s were not written "
                "(upsertStrategy ifNewer)",
                self.table,
                tally.stale,
                self.version_column,
            )
        if tally.unmatched:
            log.info(
                "postgresql sink %s: %d delete record(s) marked no row (no row with their key%s)",
                self.table,
                tally.unmatched,
                ", or its version is newer" if self.version_column else "",
            )

    def _last_per_key(self, columns: tuple[str, ...], group: _Group) -> _Group:
        """Upsert: one row per conflict key (the last one wins, as it would one statement later)."""
        positions = self._plan(ROWS, columns).key_positions
        if not positions:
            return group
        kept = last_per_key(zip(*group, strict=True), positions)
        return [index for index, _ in kept], [row for _, row in kept]

    async def _write_rows(
        self, conn: asyncpg.Connection, kind: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], *,
        tally: _Tally,
    ) -> None:
        plan = self._plan(kind, columns)
        if plan.copy:
            await conn.copy_records_to_table(
                self.table.name, records=rows, columns=list(columns), schema_name=self.table.schema
            )
            return
        arrays = [list(values) for values in zip(*rows, strict=True)]
        status = await conn.execute(plan.sql, *arrays)
        done = _status_count(status)
        if kind == DELETES:
            tally.unmatched += max(0, len({row[: len(self.conflict_key)] for row in rows}) - done)
        elif self.version_column is not None:
            tally.stale += max(0, len(rows) - done)

    async def _isolate(
        self,
        conn: asyncpg.Connection,
        kind: str,
        columns: tuple[str, ...],
        items: list[Any],
        failures: list[RecordFailure],
        *,
        tally: _Tally,
    ) -> None:
        """Write ``items`` inside a savepoint; on a record error, bisect until single bad records."""
        attempt = _Tally()
        try:
            async with conn.transaction():
                await self._write_rows(conn, kind, columns, [row for _, row in items], tally=attempt)
        except RECORD_ERRORS as exc:
            if len(items) == 1:
                failures.append(RecordFailure(items[0][0], sqlstate_message(exc), error_type(exc)))
                return
            middle = len(items) // 2
            await self._isolate(conn, kind, columns, items[:middle], failures, tally=tally)
            await self._isolate(conn, kind, columns, items[middle:], failures, tally=tally)
        else:
            tally.stale += attempt.stale
            tally.unmatched += attempt.unmatched


@dataclass
class _Tally:
    stale: int = 0  # rows ifNewer left as they were (the record's version not newer)
    unmatched: int = 0  # delete keys that marked no row


def _status_count(status: str) -> int:
    """Rows a command touched, from its status (``INSERT 0 5``, ``UPDATE 3``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
