"""Logging set-up: one line per event, as text or JSON, at a configurable level."""

from __future__ import annotations

import json
import logging
import sys

from crmmetrics.core.config import redact_text

# Fields that callers pass with ``extra=`` and that belong in the JSON line.
EVENT_FIELDS = ("metric", "plugin", "status", "duration_seconds", "rows", "error", "run_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in EVENT_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(line, default=str))


class RedactingFormatter(logging.Formatter):
    """Text lines with URL passwords hidden, whoever logged them (a plugin, a library)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("crmmetrics")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
