"""Trino sink: one ``INSERT … SELECT … FROM UNNEST(CAST(json_parse(…)))`` per batch — or, with
``upsertMode``, one ``MERGE`` with that SELECT as its source — bad records isolated by bisection
(see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import trino.exceptions

from dataflow_processor.connectors.base import ConnectorContext, RecordFailure, Sink, TransientError, WriteResult
from dataflow_processor.connectors.registry import register_sink
from dataflow_processor.connectors.trino.client import (
    MAX_STATEMENT_CHARS,
    STATEMENT_ERROR_NAMES,
    TrinoClient,
    connect_failure,
    is_transient,
)
from dataflow_processor.connectors.trino.table import quote_ident, quote_string
from dataflow_processor.connectors.trino.types import column_plan, infer_column_types, json_value
from dataflow_processor.connectors.upsert import last_per_key
from dataflow_processor.records import Record
from dataflow_processor.spec.connectors import TrinoSinkConfig

# ----------------------------------------------------------------------------- sink


@register_sink("trino")
class TrinoSink(Sink):
    type_name = "trino"

    def __init__(self, config: TrinoSinkConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.batch_size = config.batch_size
        self.flush_interval = config.batch_flush_interval_seconds
        self.client: TrinoClient | None = None
        self.column_types: dict[str, str] = {}
        self.statements = 0  # INSERT / MERGE statements sent (tests, benchmarks)
        self.conflict_key = (
            tuple(k.strip() for k in config.conflict_key.split(",") if k.strip()) if config.upsert_mode else ()
        )
        self._merge_checked = False

    async def connect(self) -> None:
        self.client = TrinoClient(self.config, self.context)
        try:
            await self.client.query("SELECT 1")
        except Exception as exc:
            raise connect_failure(exc, self.context.role) from None
        try:
            self.column_types = await self.client.columns()
        except Exception as exc:
            raise self._classify(exc) from exc
        if not self.column_types and not self.config.auto_create_table:
            raise RuntimeError(f"trino table {self.client.table_name} does not exist and autoCreateTable is not set")
        if self.column_types:
            await self._check_merge()

    async def _check_merge(self) -> None:
        """With upsertMode: the key columns exist and the catalog's connector can MERGE into the table.

        Trino analyses and plans an ``EXPLAIN (TYPE LOGICAL)`` of the batch's MERGE (with no rows)
        as it would the MERGE itself, without running it, so a connector without MERGE (``memory``,
        …) fails here, at start, and not at the first batch.
        """
        if not self.conflict_key or self._merge_checked:
            return
        assert self.client is not None
        names = self._names()
        missing = [k for k in self.conflict_key if k not in names]
        if missing:
            raise RuntimeError(
                f"conflictKey: trino table {self.client.table_name} has no column {missing[0]!r} to match rows on"
            )
        head, tail = self._statement(names)
        try:
            await self.client.query("EXPLAIN (TYPE LOGICAL) " + head + quote_string("[]") + tail)
        except trino.exceptions.TrinoQueryError as exc:
            if exc.error_name == "NOT_SUPPORTED":
                raise RuntimeError(
                    f"upsertMode: catalog {self.client.catalog!r} cannot MERGE into {self.client.table_name} "
                    f"({exc.message}); turn upsertMode off, or write to a catalog whose connector supports MERGE "
                    "(Iceberg, Delta Lake, …)"
                ) from None
            raise self._classify(exc) from exc
        self._merge_checked = True

    @property
    def raw_column(self) -> bool:
        return self.config.raw_mode or list(self.column_types) == ["data"]

    async def _ensure_table(self, values: Sequence[Mapping[str, Any]]) -> None:
        assert self.client is not None
        if self.column_types:
            return
        self.column_types = await self.client.columns()
        if self.column_types:
            return
        types = {"data": "varchar"} if self.config.raw_mode else infer_column_types(values) or {"data": "varchar"}
        columns = ", ".join(f"{quote_ident(name)} {kind}" for name, kind in types.items())
        await self.client.query(f"CREATE TABLE IF NOT EXISTS {self.client.table_name} ({columns})")
        self.context.logger.info("trino: created table %s (%s)", self.client.table_name, columns)
        self.column_types = await self.client.columns()
        await self._check_merge()

    def _row(self, value: Mapping[str, Any], names: Sequence[str]) -> list[Any]:
        if self.raw_column and (self.config.raw_mode or "data" not in value):
            return [orjson.dumps(value, default=str).decode()]
        return [json_value(value.get(name), self.column_types[name]) for name in names]

    def _names(self) -> list[str]:
        return ["data"] if self.raw_column else list(self.column_types)

    def _statement(self, names: Sequence[str]) -> tuple[str, str]:
        """The INSERT (or MERGE) around the JSON batch: (text before the literal, text after it)."""
        assert self.client is not None
        plans = [column_plan(name, self.column_types[name]) for name in names]
        row_type = ", ".join(f"{quote_ident(name)} {field}" for name, (field, _) in zip(names, plans, strict=True))
        columns = ", ".join(quote_ident(name) for name in names)
        rows = f") AS ARRAY(ROW({row_type})))) AS u"
        if not self.conflict_key:
            select = ", ".join(expression for _, expression in plans)
            head = f"INSERT INTO {self.client.table_name} ({columns}) SELECT {select} FROM UNNEST(CAST(json_parse("
            return head, rows
        # MERGE: the same SELECT, its columns named, as the source; matched on every key column
        pairs = zip(names, plans, strict=True)
        select = ", ".join(f"{expression} AS {quote_ident(name)}" for name, (_, expression) in pairs)
        match = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in self.conflict_key)
        updates = ", ".join(f"{quote_ident(n)} = s.{quote_ident(n)}" for n in names if n not in self.conflict_key)
        values = ", ".join(f"s.{quote_ident(n)}" for n in names)
        head = f"MERGE INTO {self.client.table_name} AS t USING (SELECT {select} FROM UNNEST(CAST(json_parse("
        tail = f"{rows}) AS s ON {match}"
        if updates:
            tail += f" WHEN MATCHED THEN UPDATE SET {updates}"
        return head, f"{tail} WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"

    def _last_per_key(self, names: Sequence[str], rows: list[tuple[int, list[Any]]]) -> list[tuple[int, list[Any]]]:
        """MERGE: one source row per key (Trino refuses a target row matched twice); the last one wins,
        as it would one statement later. Rows with a NULL key never match and are all kept."""
        positions = [list(names).index(k) for k in self.conflict_key]
        return last_per_key(rows, positions, freeze=orjson.dumps)  # JSON values: lists are not hashable

    async def write(self, batch: list[Record]) -> WriteResult:
        assert self.client is not None
        values = [record.value or {} for record in batch]
        try:
            await self._ensure_table(values)
        except Exception as exc:
            raise self._classify(exc) from exc
        names = self._names()
        try:
            head, tail = self._statement(names)
        except ValueError as exc:
            raise RuntimeError(f"trino table {self.client.table_name}: {exc}") from exc
        failures: list[RecordFailure] = []
        converted: list[tuple[int, list[Any]]] = []
        for index, value in enumerate(values):
            try:
                converted.append((index, self._row(value, names)))
            except (ValueError, TypeError) as exc:
                failures.append(RecordFailure(index, f"trino: {exc}", "invalid_data"))
        if self.conflict_key:
            converted = self._last_per_key(names, converted)
        rows: list[tuple[int, bytes]] = []
        for index, row in converted:
            try:
                rows.append((index, orjson.dumps(row)))
            except TypeError as exc:
                failures.append(RecordFailure(index, f"trino: {exc}", "invalid_data"))
        budget = MAX_STATEMENT_CHARS - len(head) - len(tail)
        start = 0
        while start < len(rows):
            end, size = start, 0
            while end < len(rows) and (end == start or size + len(rows[end][1]) + 1 < budget):
                size += len(rows[end][1]) + 1
                end += 1
            failures.extend(await self._insert(head, tail, rows[start:end]))
            start = end
        failures.sort(key=lambda f: f.index)
        return WriteResult(failures)

    async def _insert(self, head: str, tail: str, rows: list[tuple[int, bytes]]) -> list[RecordFailure]:
        """Insert ``rows``; on a value error bisect until the failing rows are single."""
        assert self.client is not None
        document = b"[" + b",".join(row for _, row in rows) + b"]"
        try:
            self.statements += 1
            await self.client.query(head + quote_string(document.decode()) + tail)
            return []
        except Exception as exc:
            error = self._classify(exc)
            if error is not exc or not isinstance(exc, trino.exceptions.TrinoQueryError):
                raise error from exc
            if len(rows) == 1:
                kind = "constraint_violation" if "constraint" in str(exc.error_name).lower() else "invalid_data"
                return [RecordFailure(rows[0][0], f"trino {exc.error_name}: {exc.message}", kind)]
        middle = len(rows) // 2
        return await self._insert(head, tail, rows[:middle]) + await self._insert(head, tail, rows[middle:])

    def _classify(self, exc: BaseException) -> BaseException:
        """``exc`` itself when it is about values (bisect); otherwise an error to retry the batch."""
        if is_transient(exc):
            return TransientError(f"trino (transient): {exc}")
        if self.client is not None and self.client.token_provider is not None and str(exc).startswith("error 401"):
            self.client.token_provider.invalidate()  # a new token on the retry
        if isinstance(exc, trino.exceptions.TrinoQueryError) and exc.error_name in STATEMENT_ERROR_NAMES:
            self.column_types = {}  # table may have changed: read the columns again next time
            return RuntimeError(f"trino statement failed, batch kept for retry: {exc.error_name}: {exc.message}")
        if isinstance(exc, trino.exceptions.TrinoQueryError):
            return exc
        return RuntimeError(f"trino: {exc}") if not isinstance(exc, RuntimeError) else exc

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()
