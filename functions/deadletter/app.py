"""Dead letter: a message that exhausted its retries marks its job failed, with the reason."""

from __future__ import annotations

from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring) -> RecordHandler:
    stage = await wiring.dead_letter()
    return lambda record: stage.run(record.get("body", ""), record.get("eventSourceARN", ""))


handler = sqs_handler(container, _records, concurrency=lambda s: 10)
