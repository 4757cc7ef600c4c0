"""Trino connections: the ``trino.dbapi`` client run in worker threads, its auth (basic, Keycloak
bearer), and which failures are transient (retry the batch) or about the statement."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any
from urllib.parse import urlparse

import requests
import trino.auth
import trino.dbapi
import trino.exceptions

from dataflow_processor.connectors.base import ConnectorContext, TransientError
from dataflow_processor.connectors.keycloak import BearerAuth, TokenProvider
from dataflow_processor.connectors.trino.table import columns_query, qualified
from dataflow_processor.redaction import connect_error, redact_url
from dataflow_processor.spec.connectors import _TrinoCommon

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
        _, rows = await self.query(columns_query(self.catalog, self.schema, self.table))
        return {name: kind for name, kind in rows}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
