"""Trino tables: quoted identifiers and string literals, qualified names, and the introspection
query of a table's columns (``information_schema.columns``). No driver import."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A Trino identifier: double-quoted, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def qualified(catalog: str, schema: str, table: str) -> str:
    return ".".join(quote_ident(part) for part in (catalog, schema, table))


def quote_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def columns_query(catalog: str, schema: str, table: str) -> str:
    """The table's ``(column_name, data_type)`` rows, in column order."""
    return (
        "SELECT column_name, data_type FROM "
        f"{quote_ident(catalog)}.information_schema.columns "
        f"WHERE table_schema = {quote_string(schema)} AND table_name = {quote_string(table)} "
        "ORDER BY ordinal_position"
    )
