"""Structured logs: one JSON object per line, with the job, record and request they concern.

Stages call `bind_job` (with the source's number, from 1, when the work is one source's)
and the runtime calls `bind_message` (per SQS record) and
`bind_invocation` (per Lambda invocation): context variables, so concurrent records in one
batch each keep their own, and so do containers on their own threads in the local stack.
`CorrelationFilter` puts them on every record a handler emits. Document text and whole
events are never logged.

In Lambda, `configure_lambda` hands every line (the `brief` package's and the libraries')
to Powertools for AWS Lambda's Logger: JSON on stdout with its standard keys (service,
cold_start, function_name, function_request_id, xray_trace_id, ...) plus `job_id`, `source`
and `message_id`. Elsewhere `JsonFormatter` writes the same correlation keys without
Powertools, and `TextFormatter` (the `brief` command's console) appends them to each line.
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_job_id: ContextVar[str | None] = ContextVar("job_id", default=None)
_source: ContextVar[int | None] = ContextVar("source", default=None)
_message_id: ContextVar[str | None] = ContextVar("message_id", default=None)
_invocation: ContextVar[dict[str, object] | None] = ContextVar("invocation", default=None)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# The libraries' lines below this level are dropped in Lambda (credentials found, retries).
LIBRARY_LEVEL = logging.WARNING


def bind_job(job_id: str, *, source: int | None = None) -> None:
    """Tag every log line of the current task with `job_id`, and with `source` (the source's
    number as a person reads it, from 1) when the task works on one source."""
    _job_id.set(job_id)
    _source.set(source)


def bind_message(message_id: str | None) -> None:
    """Tag every log line of the current task with the SQS record's `message_id`."""
    _message_id.set(message_id or None)


def bind_invocation(
    request_id: str | None, *, cold_start: bool | None = None, correlation_id: str | None = None
) -> None:
    """Tag every log line of this invocation with Lambda's request id, whether it is the
    container's first (`cold_start`), and the caller's id for it (API Gateway's requestId)."""
    keys: dict[str, object] = {}
    if request_id:
        keys["function_request_id"] = request_id
    if cold_start is not None:
        keys["cold_start"] = cold_start
    if correlation_id:
        keys["correlation_id"] = correlation_id
    _invocation.set(keys or None)


def correlation() -> dict[str, object]:
    """The keys that tie the current line to its job, record and invocation."""
    keys: dict[str, object] = dict(_invocation.get() or {})
    message_id = _message_id.get()
    if message_id:
        keys["message_id"] = message_id
    job_id = _job_id.get()
    if job_id:
        keys["job_id"] = job_id
        source = _source.get()
        if source is not None:
            keys["source"] = source
    return keys


class CorrelationFilter(logging.Filter):
    """Adds `correlation()` to each record a handler emits (a key set by `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only adds fields to it."""
        for key, value in correlation().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


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
        entry.update(correlation())
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One line a person reads on a console: `LEVEL logger: message (job_id=…, source=2, …)`,
    the correlation keys first, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as text."""
        fields: dict[str, object] = correlation()
        fields.pop("function_request_id", None)  # noise on a console
        fields.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}
        )
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line += " (" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_console(level: str = "WARNING") -> None:
    """Send the process's logs to stderr as `TextFormatter` lines (the `brief` command and
    the local stack's function processes). Like `logging.basicConfig`, it does nothing where
    logging is already set up: a host (pytest, an application calling `brief.cli.main`)
    keeps its handlers, formatters and level."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


def configure(level: str = "INFO") -> None:
    """Send the process's logs as JSON lines (without Powertools: local runs and tools)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
            handler.addFilter(CorrelationFilter())
    root.setLevel(level.upper())


def configure_lambda(level: str = "INFO", service: str | None = None) -> Any:
    """Every log line of this Lambda container through Powertools' Logger; returns it.

    The runtime's own text handler is replaced, so the libraries' lines are JSON with the
    same keys; `brief`'s lines are written once, at `level`, the libraries' from WARNING.
    """
    from aws_lambda_powertools import Logger  # deferred: only Lambda containers pay for it

    service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "brief"
    logger = Logger(
        service=service,
        level=level.upper(),
        utc=True,
        use_rfc3339=True,
        log_record_order=["timestamp", "level", "message", "job_id", "message_id"],
    )
    handler: logging.Handler = logger.registered_handler
    if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
        handler.addFilter(CorrelationFilter())
    logger.append_keys(
        function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        function_memory_size=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
    )
    package = logging.getLogger(__name__.partition(".")[0])  # "brief": the core's loggers
    package.setLevel(level.upper())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(LIBRARY_LEVEL)
    logging.getLogger(service).propagate = False  # its handler already wrote the line
    return logger
