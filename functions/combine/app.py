"""Combine: every summary of a job in, one cited report out."""

from __future__ import annotations

from collections.abc import Sequence

from brief.batch import SqsRecord, first_delivery
from brief.messages import CombineTask, parse_task
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring, _: Sequence[SqsRecord]) -> RecordHandler:
    stage = await wiring.combine()
    return lambda record: stage.run(
        parse_task(record["body"], CombineTask), first=first_delivery(record)
    )


handler = sqs_handler(container, _records, concurrency=lambda s: s.combine_concurrency)
