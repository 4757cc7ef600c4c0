"""JSON log lines on stderr, each carrying ``dataflow_namespace`` and ``dataflow_name``.

``LOG_LEVEL`` (debug, info, warn/warning, error) sets the level; default info. Fields passed with
``extra=`` (``record``, ``position``, ``stage``…) are added to the line as JSON values.

Every line passes :mod:`.redaction` twice: its filter masks the message and traceback of each record
(so even ``logging``'s own "--- Logging error ---" printout shows them masked), and the finished
JSON line is masked again (``extra=`` fields, JSON-escaped forms). Python warnings and uncaught
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
        try:
            text = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):  # an extra nested too deep: never lose the line
            for key, value in list(line.items()):
                try:
                    orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
                except (TypeError, orjson.JSONEncodeError):
                    line[key] = f"<not encodable as JSON: {type(value).__name__}>"
            text = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return mask(text)


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
