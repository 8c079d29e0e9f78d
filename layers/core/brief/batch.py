"""SQS batches with partial failures: one bad record never fails its neighbours.

Records run concurrently under a bound (a batch can hold up to 10,000 records with a
batching window, and each may open connections). A failing record is reported in
`batchItemFailures`, so SQS deletes the rest and redelivers only it.

A failed record is also *released*: its visibility is set to when it is worth trying again
(the wait the error names, else a backoff by receive count; at once for a permanent failure,
which only has to reach the DLQ), since otherwise SQS hides it for the queue's whole
visibility timeout — six times the function's timeout, up to 30 minutes — for a throttle that
asked for one second.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from brief.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

SqsRecord = Mapping[str, Any]
Release = Callable[[Sequence[tuple[SqsRecord, int]]], Awaitable[None]]

RETRY_BASE_S = 30  # the first retry of a record whose error names no wait
RETRY_CAP_S = 900  # and the longest; with maxReceiveCount 5 an outage of ~7 min is ridden out


class ItemFailure(TypedDict):
    itemIdentifier: str  # Lambda's field name


class BatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What SQS says about one delivery of a record (absent attributes are None)."""

    message_id: str | None
    receive_count: int | None
    sent_at: datetime | None

    @classmethod
    def of(cls, record: SqsRecord) -> Delivery:
        """Read from the record's attributes (strings; SentTimestamp in epoch milliseconds)."""
        attributes = record.get("attributes") or {}
        count, sent = (
            _digits(attributes.get("ApproximateReceiveCount")),
            _digits(attributes.get("SentTimestamp")),
        )
        return cls(
            message_id=str(record.get("messageId") or "") or None,
            receive_count=count,
            sent_at=datetime.fromtimestamp(sent / 1000, UTC) if sent is not None else None,
        )


def first_delivery(record: SqsRecord) -> bool:
    """Whether SQS delivers `record` for the first time (its receive count is 1): no earlier
    delivery can have left work behind, save a rare duplicate, which a stage's conditional
    write still catches. A record without the attribute is taken as a redelivery."""
    return Delivery.of(record).receive_count == 1


def _digits(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def retry_delay_s(record: SqsRecord, retry_after: float | None = None) -> int:
    """Seconds until a failed record should be delivered again: the wait its error named,
    else a backoff that doubles with each delivery."""
    if retry_after is not None:
        return max(1, min(RETRY_CAP_S, math.ceil(retry_after)))
    received = Delivery.of(record).receive_count or 1
    return int(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, received - 1)))


async def process_batch(
    records: Sequence[SqsRecord],
    handle: Callable[[SqsRecord], Awaitable[object]],
    *,
    concurrency: int,
    release: Release | None = None,
) -> BatchResponse:
    """Run `handle` on every record (at most `concurrency` at once); report the failures,
    and `release` them to come back when they are worth retrying."""
    bound = asyncio.Semaphore(concurrency)
    retry: list[tuple[SqsRecord, int]] = []

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
                # A permanent failure (a poison message) cannot pass by waiting: it comes back at
                # once, so it reaches the DLQ, and its job shows failed, in seconds, not after
                # maxReceiveCount visibility timeouts.
                if isinstance(exc, RetryableError):
                    retry.append((record, retry_delay_s(record, exc.retry_after)))
                else:
                    retry.append((record, 0))
                return message_id
            except Exception:  # the batch boundary: an unexpected bug fails one record, not all
                log.exception("record crashed", extra={"message_id": message_id})
                retry.append((record, retry_delay_s(record)))  # on its way to the DLQ, if it stays
                return message_id
        return None

    failed = await asyncio.gather(*(one(r) for r in records))
    if retry and release is not None:
        try:
            await release(retry)
        except RetryableError as exc:  # the records still come back, after the full timeout
            log.warning("could not release failed records early", extra={"reason": str(exc)})
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed if m is not None]}
