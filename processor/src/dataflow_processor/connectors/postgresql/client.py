"""PostgreSQL connections: opening a pool without leaking the DSN, the pool the sinks of a DataFlow
share, and how a server error is classified (a record's data, or the table changed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from dataflow_processor.redaction import connect_error

# Errors that belong to the data of some record(s), not to the connection: class 22 and 23, plus
# what a client-side encoder raises for a value it cannot encode.
RECORD_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)
# The table changed under us: reload its columns before the retry.
SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.InvalidCachedStatementError,
)


class PostgresConnectError(ConnectionError):
    """Connecting failed; the message never quotes the connection string (see :mod:`..redaction`)."""


async def open_pool(dsn: str, role: str, max_size: int = 1, **options: Any) -> asyncpg.Pool:
    """A pool for ``dsn``; a failure is reported without any text built from the DSN (asyncpg's
    parse errors quote pieces of it, a password among them)."""
    try:
        return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, **options)
    except Exception as exc:
        # "from None": the original error (and its text) must not reach a traceback in the log
        raise PostgresConnectError(connect_error(f"PostgreSQL ({role})", exc)) from None


SHARED_POOL_SIZE = 2
"""Connections at most of the pool that every sink of one DataFlow with the same connection string
shares (main, errors and route sinks): 32 route sinks to one database open 1-2 connections, not 34."""

@dataclass
class _SharedPool:
    opening: asyncio.Future[asyncpg.Pool]
    users: int = 0


_shared: dict[tuple[str, int], _SharedPool] = {}  # (dsn, event loop) → the pool being opened or open


async def shared_sink_pool(dsn: str, role: str) -> asyncpg.Pool:
    """The pool of the sinks writing to ``dsn`` (opened by the first; one more user after).

    The entry is made before the first await, so sinks connecting at once still share one pool.
    """
    key = (dsn, id(asyncio.get_running_loop()))
    entry = _shared.get(key)
    if entry is None:
        entry = _shared[key] = _SharedPool(asyncio.ensure_future(open_pool(dsn, role, max_size=SHARED_POOL_SIZE)))
    entry.users += 1
    try:
        return await asyncio.shield(entry.opening)
    except BaseException:
        entry.users -= 1
        if entry.users == 0 and _shared.get(key) is entry:
            del _shared[key]
        raise


async def release_sink_pool(pool: asyncpg.Pool) -> None:
    """One user less; the last one closes the pool."""
    for key, entry in list(_shared.items()):
        opening = entry.opening
        if opening.done() and not opening.cancelled() and not opening.exception() and opening.result() is pool:
            entry.users -= 1
            if entry.users > 0:
                return
            del _shared[key]
            break
    await pool.close()


def sqlstate_message(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    text = str(exc).strip() or type(exc).__name__
    detail = getattr(exc, "detail", None)
    if detail:
        text = f"{text} ({detail})"
    return f"{text} [SQLSTATE {state}]" if state else text


def error_type(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return "constraint_violation"
    return "invalid_data"
