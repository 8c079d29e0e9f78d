"""Log lines are JSON, and each names the job it concerns, even with records interleaved."""

from __future__ import annotations

import asyncio
import io
import json
import logging

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
