"""Lambda's SQS event source mapping, on this machine.

Long-polls a queue, hands batches of up to `BatchSize` records to the function, deletes the
records that succeeded and leaves the failed ones for redelivery. With
`ReportBatchItemFailures` only the listed records fail; an error or timeout fails the whole
batch; an invalid response fails it too, as in AWS. Redrive to the DLQ after
`maxReceiveCount` receives is the queue's own (moto implements it on receive).

Each poller long-polls for `wait_s` seconds (20, as Lambda's pollers do): on an idle queue it
makes three requests a minute, and a message sent meanwhile is answered at once (moto's
server, as `brief_local.motoserver` runs it, wakes a waiting poll on every change to its
queue and when a hidden message becomes visible again).

One deliberate difference, for quick feedback: AWS leaves a failed record invisible until
its visibility timeout ends (at least 6 times the function timeout: minutes); locally it is made
visible again after `retry_after_s` (default 1 s). Set it to None for AWS's behaviour.

Chaos runs give it `faults` (`brief_testing.faults.FaultInjector`): a batch may also be handed
to a second invocation at the same moment (a duplicate delivery), and a worker may "die"
after its handler returned and before its ack: nothing is deleted or released, so its
records come back when their visibility timeout ends, as after a crash in AWS.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from brief_local.functions import FunctionPool
from brief_local.template import SqsEventSpec

log = logging.getLogger(__name__)


class DeliveryFaults(Protocol):
    """What may go wrong with a delivery (see `brief_testing.faults.FaultInjector`)."""

    def duplicate(self, function: str) -> bool:
        """Whether this batch also goes to a second invocation at once."""
        ...

    def crash_after_write(self, function: str) -> bool:
        """Whether the worker dies after its handler returned, before its ack."""
        ...


class EventSourceMapping:
    """Pollers that feed one queue to one function, as AWS's mapping would."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        event: SqsEventSpec,
        pool: FunctionPool,
        *,
        pollers: int,
        wait_s: int = 20,
        retry_after_s: int | None = 1,
        region: str = "us-east-1",
        faults: DeliveryFaults | None = None,
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._event = event
        self._pool = pool
        self._pollers = pollers
        self._wait_s = wait_s
        self._retry_after_s = retry_after_s
        self._region = region
        self._faults = faults
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self.receives = 0  # ReceiveMessage requests made (an idle poller: one per wait_s)
        self.invocations = 0
        self.failed_records = 0

    @property
    def pollers(self) -> int:
        """How many pollers feed the function."""
        return self._pollers

    @property
    def wait_s(self) -> int:
        """How long each of the pollers' long polls waits for a message."""
        return self._wait_s

    def start(self) -> None:
        """Start polling."""
        for i in range(self._pollers):
            name = f"esm-{self._pool.spec.logical_id}-{self._event.name}-{i}"
            self._tasks.append(asyncio.create_task(self._poll(), name=name))

    async def stop(self) -> None:
        """Stop polling; a batch being processed finishes first (its records stay safe)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self._tasks.clear()

    async def _poll(self) -> None:
        while True:
            try:
                messages = await self._receive()
            except (ClientError, BotoCoreError) as exc:
                log.warning("receive from %s failed: %s", self._url, exc)
                await asyncio.sleep(1)
                continue
            if messages:
                function = self._pool.spec.logical_id
                if self._faults is not None and self._faults.duplicate(function):
                    # The same records, to another invocation at once; not awaited here, as
                    # another poller's batch would not be.
                    self._spawn(messages)
                # Shielded: a stop lets the batch finish, so no record is half-processed.
                await asyncio.shield(self._spawn(messages))

    def _spawn(self, messages: list[dict[str, Any]]) -> asyncio.Task[None]:
        delivery = asyncio.create_task(self._deliver(messages))
        self._inflight.add(delivery)
        delivery.add_done_callback(self._inflight.discard)
        return delivery

    async def _receive(self) -> list[dict[str, Any]]:
        self.receives += 1
        response = await self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=min(self._event.batch_size, 10),
            WaitTimeSeconds=self._wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages") or []
        return messages

    async def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        by_id = {m["MessageId"]: m for m in messages}
        self.invocations += 1
        try:
            response = await self._pool.invoke(event)
            failed = self._failed_ids(response, by_id)
        except Exception as exc:  # the function's error or timeout fails its whole batch
            log.warning(
                "%s failed its batch: %s: %s", self._pool.spec.logical_id, type(exc).__name__, exc
            )
            failed = set(by_id)
        if self._faults is not None and self._faults.crash_after_write(self._pool.spec.logical_id):
            return  # the worker died: no delete, no report; visibility brings the records back
        done = [m for i, m in by_id.items() if i not in failed]
        self.failed_records += len(failed)
        try:
            await asyncio.gather(self._delete(done), self._release([by_id[i] for i in failed]))
        except (ClientError, BotoCoreError) as exc:
            # The records stay safe: undeleted ones come back after their visibility timeout.
            log.warning("settling a batch on %s failed: %s", self._url, exc)

    def _failed_ids(self, response: Any, by_id: dict[str, Any]) -> set[str]:
        if not self._event.report_batch_item_failures:
            return set()
        if response is None:
            return set()
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if failures is None:
            return set()
        ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
        if not ids <= set(by_id):  # an unknown or empty identifier fails the whole batch in AWS
            return set(by_id)
        return {i for i in ids if i is not None}

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        for start in range(0, len(entries), 10):
            await self._sqs.delete_message_batch(
                QueueUrl=self._url, Entries=entries[start : start + 10]
            )

    async def _release(self, messages: list[dict[str, Any]]) -> None:
        if not messages or self._retry_after_s is None:
            return
        entries = [
            {
                "Id": str(i),
                "ReceiptHandle": m["ReceiptHandle"],
                "VisibilityTimeout": self._retry_after_s,
            }
            for i, m in enumerate(messages)
        ]
        for start in range(0, len(entries), 10):
            await self._sqs.change_message_visibility_batch(
                QueueUrl=self._url, Entries=entries[start : start + 10]
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        body = message.get("Body", "")
        attributes = message.get("Attributes") or {}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": message.get("MessageAttributes") or {},
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._region,
        }
