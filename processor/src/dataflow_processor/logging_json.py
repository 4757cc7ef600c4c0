"""JSON log lines on stderr, each carrying ``dataflow_namespace`` and ``dataflow_name``.

``LOG_LEVEL`` (debug, info, warn/warning, error) sets the level; default info. Fields passed with
``extra=`` (``record``, ``position``, ``stage``…) are added to the line as JSON values.

Every line passes :mod:`.redaction` twice: its filter masks the message and traceback of each record
(so even ``logging``'s own "--- Logging error ---" printout shows them masked), and each field's
value is masked again as it goes into the line (``extra=`` fields, JSON-escaped forms). The keys and
the formatter's own fields (time, level, logger, the DataFlow's namespace and name) are not data and
are left alone. Python warnings and uncaught
exceptions are routed through the same handler, so nothing reaches stderr around the mask.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from dataflow_processor.redaction import SecretFilter, mask

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JsonFormatter(logging.Formatter):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__()
        self.namespace = namespace
        self.name = name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "dataflow_namespace": self.namespace,
            "dataflow_name": self.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and masked) by SecretFilter
            line["exception"] = record.exc_text
        for key, value in list(line.items()):
            if key not in _OWN_FIELDS:
                line[key] = _masked(value)
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# Fields the formatter itself fills from code and Kubernetes names, never from data: masking them
# would only break the line (a password that happens to be "dataflow" would rename every key).
_OWN_FIELDS = frozenset({"time", "level", "logger", "dataflow_namespace", "dataflow_name"})


def _masked(value: Any) -> Any:
    """A field's value with every secret masked; an extra that JSON cannot encode becomes a note."""
    if isinstance(value, str):
        return mask(value)
    try:
        encoded = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # an extra nested too deep: never lose the line
        return f"<not encodable as JSON: {type(value).__name__}>"
    hidden = mask(encoded)  # also catches a secret's JSON-escaped form inside nested values
    if hidden == encoded:
        return value
    try:
        return orjson.loads(hidden)
    except orjson.JSONDecodeError:
        return hidden


def level_from_env(value: str | None) -> int:
    return _LEVELS.get((value or "info").strip().lower(), logging.INFO)


def configure_logging(namespace: str, name: str, level: str | None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(namespace, name))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_from_env(level))
    for noisy in ("aiokafka", "kafka", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)  # warnings.warn → the "py.warnings" logger → masked like the rest
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nobody caught is logged (masked) instead of printed raw by the interpreter."""
    logging.getLogger("dataflow_processor").critical("uncaught exception: %s", exc, exc_info=(kind, exc, tb))
