"""Research: retrieve every source of a job at once (creating batch jobs as they arrive),
then queue one summary per source."""

from __future__ import annotations

from collections.abc import Sequence

from brief.batch import SqsRecord
from brief.messages import parse_intake
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring, _: Sequence[SqsRecord]) -> RecordHandler:
    stage = await wiring.research()
    return lambda record: stage.run(parse_intake(record["body"]))


handler = sqs_handler(container, _records, concurrency=lambda s: s.research_concurrency)
