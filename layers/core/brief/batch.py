"""SQS batches with partial failures: one bad record never fails its neighbours.

Records run concurrently under a bound (a batch can hold up to 10,000 records with a
batching window, and each may open connections). A failing record is reported in
`batchItemFailures`, so SQS deletes the rest and redelivers only it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypedDict

from brief.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

SqsRecord = Mapping[str, Any]


class ItemFailure(TypedDict):
    itemIdentifier: str  # Lambda's field name


class BatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


async def process_batch(
    records: Sequence[SqsRecord],
    handle: Callable[[SqsRecord], Awaitable[object]],
    *,
    concurrency: int,
) -> BatchResponse:
    """Run `handle` on every record (at most `concurrency` at once); report the failures."""
    bound = asyncio.Semaphore(concurrency)

    async def one(record: SqsRecord) -> str | None:
        message_id = str(record.get("messageId", ""))
        async with bound:
            try:
                await handle(record)
            except (RetryableError, PermanentError) as exc:
                log.warning(
                    "record failed",
                    extra={
                        "message_id": message_id,
                        "error": type(exc).__name__,
                        "reason": str(exc),
                    },
                )
                return message_id
            except Exception:  # the batch boundary: an unexpected bug fails one record, not all
                log.exception("record crashed", extra={"message_id": message_id})
                return message_id
        return None

    failed = await asyncio.gather(*(one(r) for r in records))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed if m is not None]}
