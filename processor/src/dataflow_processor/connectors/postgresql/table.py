"""PostgreSQL tables: quoted names and the introspection of a table's columns (``pg_attribute``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataflow_processor.connectors.postgresql.types import Column

if TYPE_CHECKING:
    import asyncpg

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
