"""Summarize: one source in, one summary out; the last summary of a job starts its combine."""

from __future__ import annotations

from collections.abc import Sequence

from brief.batch import SqsRecord, first_delivery
from brief.messages import SummarizeTask, parse_task, tasks_among
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring, records: Sequence[SqsRecord]) -> RecordHandler:
    stage = (await wiring.summarize()).for_batch(
        tasks_among((str(r.get("body", "")) for r in records), SummarizeTask)
    )
    return lambda record: stage.run(
        parse_task(record["body"], SummarizeTask), first=first_delivery(record)
    )


handler = sqs_handler(container, _records, concurrency=lambda s: s.summarize_concurrency)
