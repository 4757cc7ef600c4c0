"""Trino source: a table or a query polled by an increasing key on the polling base
(:mod:`..polling`); see the package docstring."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from dataflow_processor.connectors.base import BatchPolicy, ConnectorContext
from dataflow_processor.connectors.polling import CursorColumnError, PollingSource
from dataflow_processor.connectors.registry import register_source
from dataflow_processor.connectors.trino.client import TrinoClient, connect_failure
from dataflow_processor.connectors.trino.table import quote_ident
from dataflow_processor.connectors.trino.types import render_literal
from dataflow_processor.connectors.values import to_json_value
from dataflow_processor.spec.connectors import TrinoSourceConfig

# ----------------------------------------------------------------------------- source

# A result row: the result's (name, Trino type) columns, the index of the key column among them,
# and the row's values as the client returned them.
TrinoRow = tuple[Sequence[tuple[str, str]], int | None, Sequence[Any]]
# The key of the last row read and its Trino type (the literal of the next poll's filter).
KeyCursor = dict[str, Any]


@register_source("trino")
class TrinoSource(PollingSource[TrinoRow, KeyCursor]):
    type_name = "trino"

    def __init__(self, config: TrinoSourceConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.config = config
        self.poll_interval = config.poll_interval
        self.client: TrinoClient | None = None
        self.key_column = config.key_column
        # the watermark partition (and checkpoint identity): the table, or "query" for a query-only source
        self.partition = f"{config.catalog}.{config.schema_}.{config.table}" if config.table else "query"
        self._metadata = {"catalog": config.catalog, "schema": config.schema_, "table": config.table}

    # -------------------------------------------------------------- hooks: what the cursor is

    @property
    def tracks_position(self) -> bool:
        return bool(self.key_column)  # without a key column the query is re-run as is every poll

    @property
    def reads_one_page(self) -> bool:
        return bool(self.key_column)

    def page_size(self, policy: BatchPolicy) -> int:
        """``readBatchSize`` rows per query; unset (or ``0``) the processor's source batch size."""
        return self.config.read_batch_size or policy.max_records

    def identity(self) -> dict[str, Any]:
        """A changed table, query or key column starts afresh."""
        return {"table": self.partition, "query": self.config.query or "", "keyColumn": self.key_column}

    def cursor_of(self, row: TrinoRow) -> KeyCursor:
        columns, key_index, values = row
        if key_index is None:
            raise CursorColumnError(f"trino source: the result has no key column {self.key_column!r}")
        return {"key": to_json_value(values[key_index]), "type": columns[key_index][1]}

    def decode_cursor(self, stored: Any) -> KeyCursor | None:
        return stored if isinstance(stored, dict) and "key" in stored else None

    def to_record(self, row: TrinoRow) -> tuple[dict[str, Any], Mapping[str, Any]]:
        columns, _, values = row
        value = {name: to_json_value(item) for (name, _), item in zip(columns, values, strict=False)}
        metadata = {**self._metadata, "id": value.get(self.key_column)} if self.key_column else self._metadata
        return value, metadata

    # -------------------------------------------------------------- hooks: the server

    async def open(self) -> None:
        self.client = TrinoClient(self.config, self.context)
        try:
            await self.client.query("SELECT 1")
        except Exception as exc:
            raise connect_failure(exc, self.context.role) from None

    async def shut(self) -> None:
        if self.client is not None:
            self.client.close()

    def _select(self, after: KeyCursor | None, limit: int) -> str:
        assert self.client is not None
        base = f"({self.config.query})" if self.config.query else self.client.table_name
        if not self.key_column:
            return self.config.query or f"SELECT * FROM {base}"
        key = quote_ident(self.key_column)
        where = ""
        if after is not None and after.get("key") is not None:
            where = f" WHERE {key} > {render_literal(after['key'], after.get('type') or 'varchar')}"
        return f"SELECT * FROM {base} AS q{where} ORDER BY {key} LIMIT {limit}"

    async def pages(self, after: KeyCursor | None, page_size: int) -> AsyncGenerator[list[TrinoRow], None]:
        assert self.client is not None
        columns, rows = await self.client.query(self._select(after, page_size))
        names = [name for name, _ in columns]
        key_index = names.index(self.key_column) if self.key_column in names else None
        if self.key_column and rows and key_index is None:
            raise CursorColumnError(f"trino source: the result has no key column {self.key_column!r}")
        yield [(columns, key_index, row) for row in rows]
