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

``upsertStrategy: ifNewer`` guards the update with the ``upsertVersionColumn``: ``… DO UPDATE SET
… WHERE t.v IS NULL OR t.v < EXCLUDED.v``, so only a strictly newer version replaces a row (equal
or older ones leave it, and are counted and logged); inside one statement each key keeps its
greatest version (``row_number()`` over the key), the first of equals. A record without a version
goes to the errors sink. With ``softDeleteColumn``, a record whose metadata ``operation`` is
``delete`` does not become a row: the batch is cut into ordered runs, and a run of deletes is one
``UPDATE … SET <softDeleteColumn> = now() FROM unnest(keys) WHERE key matches`` (under ``ifNewer``
also ``t.v IS NULL OR t.v <= record's v``); a later upsert of the key sets the column back to
``NULL``. Without ``softDeleteColumn`` the metadata is not read at all.

**Source.** Polls a table in the order of an increasing key — ``keyColumn`` (default ``id``) — or,
with ``changeTrackingColumn``, of ``(changeTrackingColumn, keyColumn)`` so updated rows are read
again. Pages of ``readBatchSize`` rows are read back to back; once a page comes back short the
source sleeps ``pollInterval`` seconds. A custom ``query`` (with or without ``table``) is run as is
every poll (the original's behaviour), read through a server-side cursor ``readBatchSize`` rows at
a time so a large result never sits in memory whole; if it references ``$1`` it is incremental:
``$1`` is bound to the last value read of the cursor column (``changeTrackingColumn``, else
``keyColumn``, else ``id``; ``NULL`` on the first poll), e.g. ``SELECT … WHERE $1::bigint IS NULL
OR id > $1 ORDER BY id LIMIT 1000``. The cursor of the last acknowledged row is saved in the
checkpoint store (:mod:`..checkpoint`), so a restart resumes after it. Records are numbered on
partition 0; the watermark maps back to the cursor (the polling base, :mod:`..polling`).

The package, by concern: :mod:`.types` (values and columns, no driver import), :mod:`.table`
(names, introspection), :mod:`.client` (pools, error classes), :mod:`.sink`, :mod:`.source`.
Importing the package registers both connectors.
"""

from __future__ import annotations

from dataflow_processor.connectors.postgresql.client import (
    RECORD_ERRORS,
    SCHEMA_ERRORS,
    SHARED_POOL_SIZE,
    PostgresConnectError,
    open_pool,
    release_sink_pool,
    shared_sink_pool,
)
from dataflow_processor.connectors.postgresql.sink import PostgresSink
from dataflow_processor.connectors.postgresql.source import PARTITION, PostgresSource
from dataflow_processor.connectors.postgresql.table import TableName, quote_ident, table_columns
from dataflow_processor.connectors.postgresql.types import (
    Column,
    decode_cursor,
    encode_cursor,
    row_builder,
    row_to_json,
)

__all__ = [
    "PARTITION",
    "RECORD_ERRORS",
    "SCHEMA_ERRORS",
    "SHARED_POOL_SIZE",
    "Column",
    "PostgresConnectError",
    "PostgresSink",
    "PostgresSource",
    "TableName",
    "decode_cursor",
    "encode_cursor",
    "open_pool",
    "quote_ident",
    "release_sink_pool",
    "row_builder",
    "row_to_json",
    "shared_sink_pool",
    "table_columns",
]
