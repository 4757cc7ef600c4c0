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

**Source.** ``SELECT * FROM "cat"."sch"."tbl" WHERE "<keyColumn>" > <last key> ORDER BY
"<keyColumn>" LIMIT <batch>`` (or the custom ``query`` as a sub-select with the same filter);
pages are read back to back while full, then every ``pollInterval``. The key is expected to be
unique and increasing (``id`` by default). The last acknowledged key and its Trino type are the
durable checkpoint (:mod:`.checkpoint`, with the table, query and key column it belongs to; a
changed one starts afresh), so a restart resumes after it. With ``keyColumn: ""`` a custom query is
re-run every poll (the original's behaviour: duplicates are the user's concern). Values become
JSON-friendly: ``decimal`` → string (exact), ``date`` → ``YYYY-MM-DD``, ``timestamp`` → ISO 8601
(``T`` separator; with its offset for ``with time zone``), ``time`` → ``HH:MM:SS[.ffffff]``,
``varbinary`` → base64, ``uuid`` → string, ``array``/``map``/``row`` → lists and objects,
``json`` → the JSON text as a string, ``real``/``double`` NaN and infinities → strings.

**Auth.** None; ``basicAuth``; or ``keycloak`` (:mod:`.keycloak`: static token, password grant
refreshed before expiry, client credentials) sent as ``Authorization: Bearer`` on every request.
Over plain ``http://`` credentials are sent anyway (like the original) with a warning at connect.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import orjson
import requests
import trino.auth
import trino.dbapi
import trino.exceptions

from dataflow_processor.connectors.base import (
    ConnectorContext,
    RecordFailure,
    Sink,
    TransientError,
    WriteResult,
)
from dataflow_processor.connectors.keycloak import BearerAuth, TokenProvider
from dataflow_processor.connectors.polling import CursorColumnError, PollingSource
from dataflow_processor.connectors.registry import register_sink, register_source
from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime, to_json_value
from dataflow_processor.records import Record
from dataflow_processor.redaction import connect_error, redact_url
from dataflow_processor.spec.connectors import TrinoSinkConfig, TrinoSourceConfig, _TrinoCommon

USER = "dataflow-operator"
MAX_STATEMENT_CHARS = 900_000  # Trino's query.max-length default is 1,000,000
TRANSIENT_ERROR_TYPES = frozenset({"INSUFFICIENT_RESOURCES", "EXTERNAL"})
TRANSIENT_ERROR_NAMES = frozenset(
    {
        "TOO_MANY_REQUESTS_FAILED",
        "SERVER_SHUTTING_DOWN",
        "SERVER_STARTING_UP",
        "NO_NODES_AVAILABLE",
        "REMOTE_TASK_ERROR",
        "REMOTE_TASK_MISMATCH",
        "REMOTE_HOST_GONE",
        "REMOTE_BUFFER_CLOSE_FAILED",
        "PAGE_TRANSPORT_ERROR",
        "PAGE_TRANSPORT_TIMEOUT",
        "ABANDONED_TASK",
        "ABANDONED_QUERY",
        "CLUSTER_OUT_OF_MEMORY",
        "EXCEEDED_GLOBAL_MEMORY_LIMIT",
        "QUERY_QUEUE_FULL",
        "QUERY_REJECTED",
        "GENERIC_INSUFFICIENT_RESOURCES",
    }
)
# user errors about the statement, not about a value: retrying the batch is right, diverting is not
STATEMENT_ERROR_NAMES = frozenset(
    {
        "TABLE_NOT_FOUND",
        "COLUMN_NOT_FOUND",
        "SCHEMA_NOT_FOUND",
        "CATALOG_NOT_FOUND",
        "MISSING_TABLE",
        "MISSING_COLUMN_NAME",
        "PERMISSION_DENIED",
        "ACCESS_DENIED",
        "NOT_SUPPORTED",
        "SYNTAX_ERROR",
        "TRANSACTION_CONFLICT",
        "READ_ONLY_VIOLATION",
        "QUERY_TEXT_TOO_LARGE",
    }
)


# ----------------------------------------------------------------------------- identifiers, literals


def quote_ident(name: str) -> str:
    """A Trino identifier: double-quoted, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def qualified(catalog: str, schema: str, table: str) -> str:
    return ".".join(quote_ident(part) for part in (catalog, schema, table))


def quote_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_INT_RANGES = {
    "tinyint": INT_RANGES[8],
    "smallint": INT_RANGES[16],
    "integer": INT_RANGES[32],
    "int": INT_RANGES[32],
    "bigint": INT_RANGES[64],
}


def base_type(trino_type: str) -> str:
    """``varchar(10)`` → ``varchar``; ``timestamp(3) with time zone`` → ``timestamp with time zone``."""
    t = trino_type.strip().lower()
    head = re.sub(r"\(.*?\)", "", t, count=1) if t.startswith(("timestamp", "time")) else t.split("(", 1)[0]
    return " ".join(head.split())


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"boolean {value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a number")


def _float_literal(kind: str, number: float) -> str:
    if math.isnan(number):
        return f"CAST(nan() AS {kind.upper()})"
    if math.isinf(number):
        return f"CAST({'-' if number < 0 else ''}infinity() AS {kind.upper()})"
    return f"{kind.upper()} '{number!r}'"


def _timestamp_literal(value: Any, with_zone: bool) -> str:
    moment = parse_datetime(value)
    if with_zone:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        offset = moment.strftime("%z")
        zone = f"{offset[:3]}:{offset[3:]}" if offset else "UTC"
        return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')} {zone}'"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _date_literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return f"DATE '{value.date().isoformat()}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return f"DATE '{dt.date.fromisoformat(value.strip()).isoformat()}'"
    return f"DATE '{parse_datetime(value).date().isoformat()}'"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def render_literal(value: Any, trino_type: str) -> str:
    """A SQL literal of ``value`` for a column of ``trino_type``; ``ValueError`` when it does not fit.

    The literal text is always produced from a parsed, typed Python value (an ``int``, a ``float``'s
    ``repr``, a ``Decimal``, a validated date) or is a quoted string with its quotes doubled.
    """
    if value is None:
        return "NULL"
    kind = base_type(trino_type)
    if kind in _INT_RANGES:
        number = as_int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for {kind}")
        return str(number) if kind == "integer" else f"{kind.upper()} '{number}'"
    if kind in ("double", "real"):
        return _float_literal(kind, _as_float(value))
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError(f"boolean {value!r} is not a decimal")
        try:
            exact = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal") from None
        if not exact.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        return f"DECIMAL '{exact}'"
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ValueError(f"{value!r} is not a boolean")
    if kind in ("varchar", "char"):
        if isinstance(value, (dict, list)):
            return quote_string(orjson.dumps(value).decode())
        if isinstance(value, bool):
            return quote_string("true" if value else "false")
        if isinstance(value, (str, int, float, decimal.Decimal)):
            return quote_string(str(value))
        return quote_string(orjson.dumps(value, default=str).decode())
    if kind == "json":
        return f"JSON {quote_string(orjson.dumps(value).decode())}"
    if kind == "timestamp":
        return _timestamp_literal(value, with_zone=False)
    if kind == "timestamp with time zone":
        return _timestamp_literal(value, with_zone=True)
    if kind == "date":
        return _date_literal(value)
    if kind in ("time", "time with time zone"):
        text = value.isoformat() if isinstance(value, dt.time) else str(value)
        if not re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?( ?[+-]\d{2}:\d{2})?", text):
            raise ValueError(f"{value!r} is not a time of day")
        return f"TIME '{text}'"
    if kind == "uuid":
        return f"UUID '{uuid.UUID(str(value))}'"
    if kind == "varbinary":
        if isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        elif isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError(f"{value!r} is not base64") from None
        else:
            raise ValueError(f"{value!r} is not binary (base64 text expected)")
        return f"X'{raw.hex()}'"
    if kind in ("array", "map", "row"):
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{value!r} does not fit {trino_type}")
        if not re.fullmatch(r"[a-z0-9_(), \"]+", trino_type.lower()):
            raise ValueError(f"unsupported column type {trino_type}")
        return f"CAST(JSON {quote_string(_json_text(value))} AS {trino_type})"
    raise ValueError(f"unsupported column type {trino_type}")


_VIA_TEXT = {  # column type → SQL that turns the text field u."c" into the column's value
    "timestamp": "CAST({field} AS {type})",
    "timestamp with time zone": "CAST({field} AS {type})",
    "date": "CAST({field} AS {type})",
    "time": "CAST({field} AS {type})",
    "time with time zone": "CAST({field} AS {type})",
    "uuid": "CAST({field} AS {type})",
    "decimal": "CAST({field} AS {type})",
    "varbinary": "from_hex({field})",
    "json": "json_parse({field})",  # a JSON null inside the batch would be JSON 'null', not NULL
    "varchar": "{field}",
    "char": "{field}",
}
_JSON_NATIVE = {"tinyint", "smallint", "integer", "int", "bigint", "double", "real", "boolean"}


def column_plan(name: str, trino_type: str) -> tuple[str, str]:
    """(field type in the ``ROW`` of the JSON batch, select expression) for one column."""
    kind = base_type(trino_type)
    field = f"u.{quote_ident(name)}"
    if kind in _VIA_TEXT:
        return "varchar", _VIA_TEXT[kind].format(field=field, type=trino_type)
    if kind in _JSON_NATIVE or kind in ("array", "map", "row"):
        if not re.fullmatch(r"[a-z0-9_(), \"]+", trino_type.lower()):
            raise ValueError(f"unsupported column type {trino_type}")
        return trino_type, field
    raise ValueError(f"unsupported column type {trino_type}")


def json_value(value: Any, trino_type: str) -> Any:
    """``value`` checked and normalized for its column, as it travels in the JSON batch.

    ``ValueError`` when it does not fit. Same acceptance rules as :func:`render_literal`.
    """
    if value is None:
        return None
    kind = base_type(trino_type)
    if kind in _INT_RANGES:
        number = as_int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for {kind}")
        return number
    if kind in ("double", "real"):
        real = _as_float(value)
        if math.isnan(real):
            return "NaN"
        if math.isinf(real):
            return "Infinity" if real > 0 else "-Infinity"
        return real
    if kind == "decimal":
        return render_literal(value, trino_type)[len("DECIMAL '") : -1]
    if kind == "boolean":
        return render_literal(value, trino_type) == "true"
    if kind in ("varchar", "char"):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, decimal.Decimal)):
            return str(value)
        return orjson.dumps(value, default=str).decode()
    if kind == "json":
        return orjson.dumps(value).decode()
    if kind in ("timestamp", "timestamp with time zone", "date", "time", "time with time zone", "uuid"):
        literal = render_literal(value, trino_type)  # validated typed literal: KIND '<text>'
        return literal[literal.index("'") + 1 : -1]
    if kind == "varbinary":
        return render_literal(value, trino_type)[2:-1]  # X'<hex>'
    if kind in ("array", "map", "row"):
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{value!r} does not fit {trino_type}")
        return value
    raise ValueError(f"unsupported column type {trino_type}")


def infer_column_types(values: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Column types for ``autoCreateTable`` from a batch: first non-null value of each key decides.

    ``bool`` → ``boolean``, ``int`` → ``bigint``, ``float`` → ``double``, everything else (strings,
    objects and lists as JSON text, keys only ever null) → ``varchar``. Order: first appearance.
    """
    types: dict[str, str] = {}
    for value in values:
        for key, item in value.items():
            if types.get(key, "varchar?") != "varchar?":
                continue
            if item is None:
                types[key] = "varchar?"
            elif isinstance(item, bool):
                types[key] = "boolean"
            elif isinstance(item, int) and -(2**63) <= item < 2**63:
                types[key] = "bigint"
            elif isinstance(item, float):
                types[key] = "double"
            else:
                types[key] = "varchar"
    return {key: ("varchar" if kind == "varchar?" else kind) for key, kind in types.items()}


# ----------------------------------------------------------------------------- connection


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, trino.exceptions.TrinoQueryError):
        return exc.error_type in TRANSIENT_ERROR_TYPES or (exc.error_name or "") in TRANSIENT_ERROR_NAMES
    if isinstance(exc, (trino.exceptions.Http502Error, trino.exceptions.Http503Error, trino.exceptions.Http504Error)):
        return True
    if isinstance(exc, trino.exceptions.HttpError):  # "error <status>[: body]"
        return re.match(r"error (429|5\d\d)\b", str(exc)) is not None
    return isinstance(
        exc,
        (
            trino.exceptions.TrinoConnectionError,
            requests.ConnectionError,
            requests.Timeout,
            ConnectionError,
            TimeoutError,
            OSError,
        ),
    )


def connect_failure(exc: BaseException, role: str) -> BaseException:
    """The error to raise for a failed first statement: Trino's own answer (a query error, an HTTP
    status) keeps its text; a client-side failure (a URL that does not parse, an unreachable host)
    is told by type only, since its text is built from ``serverURL`` (credentials and all)."""
    if isinstance(exc, (trino.exceptions.TrinoQueryError, trino.exceptions.HttpError)):
        message = f"trino ({role}): {exc}"
    else:
        message = connect_error(f"Trino ({role})", exc)
    return TransientError(message) if is_transient(exc) else RuntimeError(message)


class _BearerProvider(trino.auth.Authentication):
    """trino client auth that asks the token provider on every request (refresh before expiry)."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def set_http_session(self, http_session: requests.Session) -> requests.Session:
        http_session.auth = BearerAuth(self.provider)
        return http_session

    def get_exceptions(self) -> tuple[Any, ...]:
        return ()


class TrinoClient:
    """Runs statements through ``trino.dbapi`` in a worker thread; one connection per connector."""

    def __init__(self, config: _TrinoCommon, context: ConnectorContext) -> None:
        # a query-only source has no table; every other use has one (the models require it)
        assert config.server_url and config.catalog and config.schema_
        self.config = config
        self.context = context
        self.catalog, self.schema, self.table = config.catalog, config.schema_, config.table or ""
        self.token_provider: TokenProvider | None = None
        auth: trino.auth.Authentication | None = None
        if config.keycloak is not None:
            self.token_provider = TokenProvider(config.keycloak)
            auth = _BearerProvider(self.token_provider)
        elif config.basic_auth is not None and config.basic_auth.username:
            auth = trino.auth.BasicAuthentication(config.basic_auth.username, config.basic_auth.password or "")
        url = config.server_url if "://" in config.server_url else f"http://{config.server_url}"
        parsed = urlparse(url)
        if auth is not None and parsed.scheme == "http":
            context.logger.warning(
                "trino %s: credentials are sent over plain http to %s", context.role, redact_url(url)
            )
        self._connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
            host=url.rstrip("/"),
            user=(config.basic_auth.username if config.basic_auth and config.basic_auth.username else USER),
            catalog=self.catalog,
            schema=self.schema,
            auth=auth,
            allow_insecure_auth=True,
            request_timeout=config.query_timeout_seconds,
            source="dataflow-processor",
        )

    @property
    def table_name(self) -> str:
        return qualified(self.catalog, self.schema, self.table)

    def _run(self, sql: str) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            rows = cursor.fetchall()
            columns = [(d[0], str(d[1])) for d in (cursor.description or [])]
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        return columns, rows

    async def query(self, sql: str) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        return await asyncio.to_thread(self._run, sql)

    async def columns(self) -> dict[str, str]:
        sql = (
            "SELECT column_name, data_type FROM "
            f"{quote_ident(self.catalog)}.information_schema.columns "
            f"WHERE table_schema = {quote_string(self.schema)} AND table_name = {quote_string(self.table)} "
            "ORDER BY ordinal_position"
        )
        _, rows = await self.query(sql)
        return {name: kind for name, kind in rows}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()


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
        self.statements = 0  # INSERT statements sent (tests, benchmarks)

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

    def _row(self, value: Mapping[str, Any], names: Sequence[str]) -> list[Any]:
        if self.raw_column and (self.config.raw_mode or "data" not in value):
            return [orjson.dumps(value, default=str).decode()]
        return [json_value(value.get(name), self.column_types[name]) for name in names]

    def _statement(self, names: Sequence[str]) -> tuple[str, str]:
        """The INSERT around the JSON batch: (text before the literal, text after it)."""
        assert self.client is not None
        plans = [column_plan(name, self.column_types[name]) for name in names]
        row_type = ", ".join(f"{quote_ident(name)} {field}" for name, (field, _) in zip(names, plans, strict=True))
        columns = ", ".join(quote_ident(name) for name in names)
        select = ", ".join(expression for _, expression in plans)
        head = f"INSERT INTO {self.client.table_name} ({columns}) SELECT {select} FROM UNNEST(CAST(json_parse("
        return head, f") AS ARRAY(ROW({row_type})))) AS u"

    async def write(self, batch: list[Record]) -> WriteResult:
        assert self.client is not None
        values = [record.value or {} for record in batch]
        try:
            await self._ensure_table(values)
        except Exception as exc:
            raise self._classify(exc) from exc
        names = ["data"] if self.raw_column else list(self.column_types)
        try:
            head, tail = self._statement(names)
        except ValueError as exc:
            raise RuntimeError(f"trino table {self.client.table_name}: {exc}") from exc
        failures: list[RecordFailure] = []
        rows: list[tuple[int, bytes]] = []
        for index, value in enumerate(values):
            try:
                rows.append((index, orjson.dumps(self._row(value, names))))
            except (ValueError, TypeError) as exc:
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
