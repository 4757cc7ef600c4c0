"""Keeping secret values out of every log line: a mask of the values merged from the secrets mount,
credentials stripped from URLs, and connect errors told without the connection string.

Three layers, because no single one is enough:

* **At the source.** Code that reports a failure to reach an endpoint never quotes its address
  text: :func:`redact_url` drops a URL's user-info and query, and :func:`connect_error` describes a
  failed connect by the error's type and errno (or the server's own message), never by the
  client's text — asyncpg's DSN parser quotes *pieces* of the DSN (``invalid literal for int():
  's3cr'`` for a password with ``#``), which no mask of whole values could recognise.
* **The mask.** :func:`register_secrets` (called where :mod:`.spec.loader` merges the mounted
  Secret into the spec) records every value, plus the forms it can take in a log line: its JSON
  escaping, each line of a multi-line value (PEM), each comma-separated part (broker lists) and,
  for a URL, its user-info and password (percent-encoded or not). :class:`SecretFilter`, installed
  on the log handler, rewrites each record's message and traceback text with every occurrence
  replaced by ``***`` before any formatter or ``logging``'s own error printer sees it;
  :func:`mask` is applied once more to the finished JSON line, which covers ``extra=`` fields.
* **Any URL with credentials** in a finished line, secret or not, loses them
  (``scheme://user:pass@`` → ``scheme://***@``).

Values shorter than :data:`MIN_LENGTH` characters are not masked: masking ``a`` would turn every
log line to noise, and a two-character value guards nothing.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson

MIN_LENGTH = 3
MASK = "***"

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@'\"]+@")


def _forms(value: str) -> set[str]:
    """The value and the other texts it can appear as in a log line."""
    forms = {value, orjson.dumps(value).decode()[1:-1]}
    forms.update(line.strip() for line in value.splitlines())
    forms.update(part.strip() for part in value.split(","))
    _scheme, sep, rest = value.partition("://")
    if sep:
        # user-info ends at the last "@" before the path: split by hand, since a password with "#",
        # "/" or "?" breaks urlsplit's parse (that is exactly the case to catch)
        authority = rest.rsplit("@", 1)[0] if "@" in rest else ""
        if authority:
            _user, _, password = authority.partition(":")
            for text in (authority, password):
                forms.update({text, unquote(text), quote(text, safe="")})
    return {form for form in forms if len(form) >= MIN_LENGTH}


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values (and their other forms) in every log line from now on."""
    global _pattern
    added = set()
    for value in values:
        if value:
            added |= _forms(value)
    if not added - _secrets:
        return
    _secrets.update(added)
    # longest first, so a value is masked whole before any part of it
    ordered = sorted(_secrets, key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(text) for text in ordered))


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    global _pattern
    _secrets.clear()
    _pattern = None


def mask(text: str) -> str:
    """``text`` with every registered secret and every URL's credentials replaced by ``***``."""
    if _pattern is not None:
        text = _pattern.sub(MASK, text)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
    return text


def redact_url(url: str) -> str:
    """``url`` without user-info and query (``http://u:p@host:8080/x?token=t`` → ``http://***@host:8080/x``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<url not shown>"
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + host + port
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def connect_error(what: str, exc: BaseException) -> str:
    """Why connecting to ``what`` failed, without any text the client built from the address.

    A server's own refusal (``exc`` has a ``sqlstate``, e.g. a wrong password) keeps its message;
    an OS error is named by its errno; anything else (a DSN that does not parse) by its type only.
    """
    state = getattr(exc, "sqlstate", None)
    if state:
        return f"cannot connect to {what}: {exc} [SQLSTATE {state}]"
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno > 0 else "address lookup failed"
        return f"cannot connect to {what}: {type(exc).__name__} ({name})"
    if isinstance(exc, TimeoutError):
        return f"cannot connect to {what}: timed out"
    return f"cannot connect to {what}: {type(exc).__name__} (the details are not shown: they may quote the address)"


class SecretFilter(logging.Filter):
    """Rewrites a record's message and traceback text with the secrets masked (always passes it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None and "://" not in str(record.msg) and not record.args and not record.exc_info:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown, masked
            try:
                message = f"{record.msg} {record.args}"
            except Exception:
                message = "<log message not printable>"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
            record.exc_info = None  # the masked text is what is shown
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
