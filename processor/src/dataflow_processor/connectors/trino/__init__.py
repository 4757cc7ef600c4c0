"""Trino source and sink, over the ``trino`` client (its HTTP protocol; the client runs in threads).

**Sink.** At connect the table's columns and types are read once from
``information_schema.columns`` (``autoCreateTable``: a missing table is created at the first
write with columns inferred from that batch, see :func:`infer_column_types`). Each ``write`` is one
multi-row INSERT of the whole batch **as one JSON document**::

    INSERT INTO "cat"."sch"."tbl" ("c1", "c2") SELECT u."c1", CAST(u."c2" AS timestamp(6))
    FROM UNNEST(CAST(json_parse('[[1, "2024-05-06 07:08:09.000000"], …]')
                     AS ARRAY(ROW("c1" bigint, "c2" varchar)))) AS u

Every value is first checked and normalized per column type on the client by :func:`json_value`
(range-checked integers, finite-or-named floats, exact decimals as text, timestamps parsed from
RFC 3339 or epoch seconds/milliseconds, base64 → hex for ``varbinary``…), so a value that does not
fit its column fails **that record** before anything is sent; the batch is then serialized by
``orjson`` and sent as one string literal with its quotes doubled — no value text is ever spliced
into SQL. Trino plans this statement in constant time, where a ``VALUES`` list of typed literals
costs it seconds per thousand rows (measured: 2,000 rows 0.24 s vs 3.4 s). Strings travel as
unbounded ``varchar`` and decimals as text, so Trino's own INSERT checks (``varchar(n)`` length,
…) still apply; decimals are rounded to the column's scale by the cast. The statement is split only
past :data:`MAX_STATEMENT_CHARS`. Keys that are not columns are dropped, missing columns are
``NULL`` (the original's rule). A table whose only column is ``data`` (the original's auto-created
table), or ``rawMode``, gets the whole record as JSON text in ``data``. :func:`render_literal`
(typed SQL literals) is used for the source's key filter.

Failures: errors Trino marks as transient (``INSUFFICIENT_RESOURCES`` and ``EXTERNAL`` error types,
the internal error names in :data:`TRANSIENT_ERROR_NAMES`), HTTP 5xx/429 and connection errors
raise :class:`TransientError` — the pipeline retries the batch with backoff. Errors about the
statement itself (table or column gone, access denied) raise too, after the column cache is
dropped, so nothing is diverted for them. Any other query failure is about values: the batch is
**bisected** (each half inserted again) until the failing records are single; those, and only
those, are reported as failures and go to the errors sink. INSERTs are atomic per statement, so a
failed half wrote nothing.

**Upsert.** With ``upsertMode`` the same SELECT is the source of one ``MERGE INTO … AS t USING
(…) AS s ON t.k = s.k WHEN MATCHED THEN UPDATE SET … WHEN NOT MATCHED THEN INSERT …`` per batch
(``conflictKey`` columns; each key's last record of the batch, since Trino refuses a target row
matched twice). At start an ``EXPLAIN (TYPE LOGICAL)`` of that MERGE checks that the catalog's
connector supports it; one that does not (``memory``) stops the start naming ``upsertMode``.

**Source.** ``SELECT * FROM "cat"."sch"."tbl" WHERE "<keyColumn>" > <last key> ORDER BY
"<keyColumn>" LIMIT <readBatchSize>`` (or the custom ``query`` as a sub-select with the same filter);
pages are read back to back while full, then every ``pollInterval``. The key is expected to be
unique and increasing (``id`` by default). The last acknowledged key and its Trino type are the
durable checkpoint (:mod:`..checkpoint`, with the table, query and key column it belongs to; a
changed one starts afresh), so a restart resumes after it. With ``keyColumn: ""`` a custom query is
re-run every poll (the original's behaviour: duplicates are the user's concern). Values become
JSON-friendly: ``decimal`` → string (exact), ``date`` → ``YYYY-MM-DD``, ``timestamp`` → ISO 8601
(``T`` separator; with its offset for ``with time zone``), ``time`` → ``HH:MM:SS[.ffffff]``,
``varbinary`` → base64, ``uuid`` → string, ``array``/``map``/``row`` → lists and objects,
``json`` → the JSON text as a string, ``real``/``double`` NaN and infinities → strings.

**Auth.** None; ``basicAuth``; or ``keycloak`` (:mod:`..keycloak`: static token, password grant
refreshed before expiry, client credentials) sent as ``Authorization: Bearer`` on every request.
Over plain ``http://`` credentials are sent anyway (like the original) with a warning at connect.

The package, by concern: :mod:`.types` (values, literals, inferred types; no driver import),
:mod:`.table` (names, introspection), :mod:`.client` (connection, auth, error classes),
:mod:`.sink`, :mod:`.source`. Importing the package registers both connectors.
"""

from __future__ import annotations

from dataflow_processor.connectors.trino.client import (
    MAX_STATEMENT_CHARS,
    STATEMENT_ERROR_NAMES,
    TRANSIENT_ERROR_NAMES,
    TRANSIENT_ERROR_TYPES,
    USER,
    TrinoClient,
    connect_failure,
    is_transient,
)
from dataflow_processor.connectors.trino.sink import TrinoSink
from dataflow_processor.connectors.trino.source import TrinoSource
from dataflow_processor.connectors.trino.table import columns_query, qualified, quote_ident, quote_string
from dataflow_processor.connectors.trino.types import (
    base_type,
    column_plan,
    infer_column_types,
    json_value,
    render_literal,
)

__all__ = [
    "MAX_STATEMENT_CHARS",
    "STATEMENT_ERROR_NAMES",
    "TRANSIENT_ERROR_NAMES",
    "TRANSIENT_ERROR_TYPES",
    "USER",
    "TrinoClient",
    "TrinoSink",
    "TrinoSource",
    "base_type",
    "column_plan",
    "columns_query",
    "connect_failure",
    "infer_column_types",
    "is_transient",
    "json_value",
    "qualified",
    "quote_ident",
    "quote_string",
    "render_literal",
]
