"""Research: retrieve every source of a job at once (creating batch jobs as they arrive),
then queue one summary per source."""

from __future__ import annotations

from brief.messages import parse_intake
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring) -> RecordHandler:
    stage = await wiring.research()
    return lambda record: stage.run(parse_intake(record["body"]))


handler = sqs_handler(container, _records, concurrency=lambda s: s.research_concurrency)
