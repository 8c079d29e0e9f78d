"""Structured logs: one JSON object per line, with the job they concern.

Handlers call `configure` once per container; stages call `bind_job` so every line logged
while working on a record carries its `job_id` (a context variable: concurrent records in one
batch each keep their own). Document text and whole events are never logged.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

_job_id: ContextVar[str | None] = ContextVar("job_id", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def bind_job(job_id: str) -> None:
    """Tag every log line of the current task with `job_id`."""
    _job_id.set(job_id)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, job_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = _job_id.get()
        if job_id:
            entry["job_id"] = job_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """Send the process's logs as JSON lines (Lambda's runtime already installed a handler)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level.upper())
