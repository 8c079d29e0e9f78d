"""Log lines are JSON, and each names the job it concerns, even with records interleaved."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from brief import logs
from brief.logs import JsonFormatter, bind_job


async def test_concurrent_records_log_their_own_job_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("brief.test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    async def work(job_id: str) -> None:
        bind_job(job_id)
        await asyncio.sleep(0)
        log.info("fetched", extra={"index": 3})

    try:
        await asyncio.gather(*(asyncio.create_task(work(j)) for j in ("a" * 32, "b" * 32)))
    finally:
        log.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted(line["job_id"] for line in lines) == ["a" * 32, "b" * 32]
    assert all(line["message"] == "fetched" and line["index"] == 3 for line in lines)
    assert all(line["level"] == "INFO" and line["logger"] == "brief.test.logs" for line in lines)


def test_console_logging_leaves_a_host_s_logging_as_it_was() -> None:
    """`brief`'s console set-up, run inside a host that has logging already (pytest here),
    changes neither its handlers' formatters nor its level."""
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    try:
        logs.configure_console("WARNING")
        assert root.handlers == [handler]
        assert handler.formatter is formatter
        assert root.level == logging.DEBUG
    finally:
        root.handlers, root.level = saved_handlers, saved_level


def test_console_logging_in_a_bare_process_writes_text_lines() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []
    try:
        logs.configure_console("WARNING")
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logs.TextFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers, root.level = saved_handlers, saved_level
