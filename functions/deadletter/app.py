"""Dead letter: a message that exhausted its retries is kept for an operator (`brief dlq`)
and marks its job failed, with the reason."""

from __future__ import annotations

from collections.abc import Sequence

from brief.batch import Delivery, SqsRecord
from brief.runtime import Container, RecordHandler, sqs_handler
from brief.wiring import Wiring

container = Container()


async def _records(wiring: Wiring, _: Sequence[SqsRecord]) -> RecordHandler:
    stage = await wiring.dead_letter()

    async def record(record: SqsRecord) -> object:
        delivery = Delivery.of(record)
        return await stage.run(
            record.get("body", ""),
            record.get("eventSourceARN", ""),
            message_id=delivery.message_id,
            receive_count=delivery.receive_count,
            sent_at=delivery.sent_at,
        )

    return record


handler = sqs_handler(container, _records, concurrency=lambda s: s.deadletter_concurrency)
