"""`brief dlq` against moto with no dead-letter function draining the DLQs: a message still
waiting in a DLQ is listed without being consumed, and a redrive moves it back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brief.messages import SummarizeTask
from brief_cli import dlq
from brief_cli.client import ClientError

LOGICAL = [
    "IntakeQueue",
    "SummarizeQueue",
    "CombineQueue",
    "IntakeDeadLetterQueue",
    "SummarizeDeadLetterQueue",
    "CombineDeadLetterQueue",
]


async def make_stack(s3: Any, sqs: Any) -> tuple[str, dict[str, str]]:
    """A bucket and queues named as the local stack names them."""
    name = f"brief-{uuid.uuid4().hex[:6]}"
    await s3.create_bucket(Bucket=f"{name}-bucket")
    urls = {
        logical: (await sqs.create_queue(QueueName=f"{name}-{logical}"))["QueueUrl"]
        for logical in LOGICAL
    }
    return name, urls


async def test_a_waiting_dead_message_is_shown_then_redriven(
    s3: Any, sqs: Any, moto_endpoint: str
) -> None:
    name, urls = await make_stack(s3, sqs)
    job_id = uuid.uuid4().hex
    body = SummarizeTask(job_id=job_id, index=1, expected=2).model_dump_json()
    await sqs.send_message(QueueUrl=urls["SummarizeDeadLetterQueue"], MessageBody=body)

    async with dlq.connect(endpoint=moto_endpoint, stack=name) as (s3c, sqsc, stack):
        shown = await dlq.dead_letters(s3c, sqsc, stack)
        again = await dlq.dead_letters(s3c, sqsc, stack, queue="summarize")
        assert [(d.kept, d.message.queue, d.message.job_id) for d in shown] == [
            (False, "summarize", job_id)
        ]
        assert [d.message.message_id for d in again] == [d.message.message_id for d in shown]
        assert await dlq.dead_letters(s3c, sqsc, stack, queue="intake") == []

        result = await dlq.redrive(s3c, sqsc, stack, job=job_id)

    assert [d.message.job_id for d in result.sent] == [job_id]
    assert result.revived == {}  # no job to revive: its failure was never recorded
    back = await sqs.receive_message(QueueUrl=urls["SummarizeQueue"], WaitTimeSeconds=1)
    assert [m["Body"] for m in back["Messages"]] == [body]
    attributes = await sqs.get_queue_attributes(
        QueueUrl=urls["SummarizeDeadLetterQueue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert set(attributes["Attributes"].values()) == {"0"}


async def test_an_unknown_stack_is_named_in_the_error(moto_endpoint: str) -> None:
    with pytest.raises(ClientError, match="no local stack named no-such-stack"):
        async with dlq.connect(endpoint=moto_endpoint, stack="no-such-stack"):
            pass


def test_show_formats_age_and_a_long_body() -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert dlq.age(now - timedelta(seconds=42), now) == "42s"
    assert dlq.age(now - timedelta(hours=3, minutes=5), now) == "3h"
    text = dlq.preview("x" * 500, width=20)
    assert text == "x" * 19 + "… (500 characters)"
    assert dlq.preview("") == "(empty)"
