"""JSON log lines on stderr, each carrying ``dataflow_namespace`` and ``dataflow_name``.

``LOG_LEVEL`` (debug, info, warn/warning, error) sets the level; default info. Fields passed with
``extra=`` (``record``, ``position``, ``stage``…) are added to the line as JSON values.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

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
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def level_from_env(value: str | None) -> int:
    return _LEVELS.get((value or "info").strip().lower(), logging.INFO)


def configure_logging(namespace: str, name: str, level: str | None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(namespace, name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_from_env(level))
    for noisy in ("aiokafka", "kafka", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
