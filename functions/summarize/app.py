"""Summarize: one source in, one summary out; the last summary of a job starts its combine."""

from __future__ import annotations

from brief.messages import SummarizeTask, parse_task
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring) -> RecordHandler:
    stage = await wiring.summarize()
    return lambda record: stage.run(parse_task(record["body"], SummarizeTask))


handler = sqs_handler(container, _records, concurrency=lambda s: s.summarize_concurrency)
