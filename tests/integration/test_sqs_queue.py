"""SQSTaskQueue against moto's server: typed messages in, the same JSON out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from brief.adapters.sqs import SQSTaskQueue
from brief.errors import StorageUnavailable
from brief.messages import INLINE_BYTES, SummarizeTask, parse_task
from brief.models import SourceOutcome, SourceRecord

JOB = "0" * 32


async def test_send_delivers_every_message_in_batches_of_ten(sqs: Any) -> None:
    url = (await sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    queue = SQSTaskQueue(sqs, {"summarize": url})
    sent = [SummarizeTask(job_id=JOB, index=i, expected=23) for i in range(23)]
    await queue.send("summarize", sent)

    received: list[SummarizeTask] = []
    while len(received) < len(sent):
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            received.append(parse_task(message["Body"], SummarizeTask))
    assert sorted(received, key=lambda t: t.index) == sent


async def test_messages_carrying_sources_are_sent_in_batches_sqs_takes(sqs: Any) -> None:
    # Ten messages of 48 KiB each exceed SendMessageBatch's 256 KiB: the queue splits them
    # by size (SQS would refuse the whole batch otherwise).
    url = (await sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    queue = SQSTaskQueue(sqs, {"summarize": url})
    at = datetime(2026, 12, 3, tzinfo=UTC)
    sent = [
        SummarizeTask(
            job_id=JOB,
            index=i,
            expected=10,
            source=SourceRecord(
                job_id=JOB,
                outcome=SourceOutcome(index=i, url=f"https://example.com/{i}", state="ok"),
                text="w" * (INLINE_BYTES - 400),
                fetched_at=at,
            ),
        )
        for i in range(10)
    ]
    sizes: list[int] = []  # moto takes any size: what SQS would refuse is counted here
    real = sqs.send_message_batch

    async def counted(**kwargs: Any) -> Any:
        sizes.append(sum(len(e["MessageBody"].encode()) for e in kwargs["Entries"]))
        return await real(**kwargs)

    sqs.send_message_batch = counted
    try:
        await queue.send("summarize", sent)
    finally:
        sqs.send_message_batch = real

    assert len(sizes) > 1
    assert max(sizes) <= 256 * 1024
    received: list[SummarizeTask] = []
    while len(received) < len(sent):
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            received.append(parse_task(message["Body"], SummarizeTask))
    assert sorted(received, key=lambda t: t.index) == sent


async def test_an_unconfigured_queue_is_an_error_not_a_silent_drop(sqs: Any) -> None:
    queue = SQSTaskQueue(sqs, {})
    with pytest.raises(StorageUnavailable, match="no queue URL configured for the combine queue"):
        await queue.send("combine", [SummarizeTask(job_id=JOB, index=0, expected=1)])


async def test_a_missing_queue_is_a_retryable_error(sqs: Any, moto_endpoint: str) -> None:
    queue = SQSTaskQueue(sqs, {"combine": f"{moto_endpoint}/123456789012/nope"})
    with pytest.raises(StorageUnavailable):
        await queue.send("combine", [SummarizeTask(job_id=JOB, index=0, expected=1)])


@pytest.mark.parametrize("known", [True, False], ids=["queue-we-send-to", "found-by-arn"])
async def test_a_failed_record_is_released_to_come_back_at_once(sqs: Any, known: bool) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    await SQSTaskQueue(sqs, {"summarize": url}).send(
        "summarize", [SummarizeTask(job_id=JOB, index=0, expected=1)]
    )
    queue = SQSTaskQueue(sqs, {"summarize": url} if known else {})
    taken = await sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)
    handle = taken["Messages"][0]["ReceiptHandle"]
    hidden = await sqs.receive_message(QueueUrl=url)
    assert "Messages" not in hidden  # as after a failed invocation: hidden for 10 minutes

    await queue.release(arn, [(handle, 0)])

    again = await sqs.receive_message(QueueUrl=url)
    assert parse_task(again["Messages"][0]["Body"], SummarizeTask).index == 0
