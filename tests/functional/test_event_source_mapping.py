"""The local event source mapping settles batches the way Lambda's does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from brief_local.esm import EventSourceMapping
from brief_local.template import SqsEventSpec


class FakeSQS:
    """Hands out `messages` once, then records what the mapping deletes and releases."""

    def __init__(self, bodies: list[str]) -> None:
        self.messages = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b, "Attributes": {}}
            for i, b in enumerate(bodies)
        ]
        self.deleted: list[str] = []
        self.released: list[tuple[str, int]] = []
        self.drained = asyncio.Event()

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        batch, self.messages = self.messages[: kwargs["MaxNumberOfMessages"]], []
        if not batch:
            await asyncio.sleep(0.01)
        return {"Messages": batch}

    async def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        self.drained.set()

    async def change_message_visibility_batch(
        self,
        QueueUrl: str,
        Entries: list[dict[str, Any]],
    ) -> None:
        self.released += [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries]
        self.drained.set()


class FakePool:
    """A function that answers with `response` (or raises it)."""

    def __init__(self, response: object) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.spec = type("Spec", (), {"logical_id": "SummarizeFunction"})()

    async def invoke(self, event: dict[str, Any]) -> object:
        self.events.append(event)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


async def settle(bodies: list[str], response: object, *, partial: bool = True) -> FakeSQS:
    sqs = FakeSQS(bodies)
    event = SqsEventSpec(
        name="Queue",
        queue="SummarizeQueue",
        batch_size=10,
        batching_window_s=0,
        report_batch_item_failures=partial,
        max_concurrency=None,
    )
    mapping = EventSourceMapping(
        sqs,
        "url",
        "arn:aws:sqs:us-east-1:123456789012:q",
        event,
        FakePool(response),  # type: ignore[arg-type]
        pollers=1,
        retry_after_s=1,
    )
    mapping.start()
    await asyncio.wait_for(sqs.drained.wait(), timeout=5)
    await asyncio.sleep(0.02)
    await mapping.stop()
    return sqs


async def test_listed_failures_come_back_and_the_rest_are_deleted() -> None:
    sqs = await settle(["a", "b", "c"], {"batchItemFailures": [{"itemIdentifier": "m1"}]})
    assert sorted(sqs.deleted) == ["r0", "r2"]
    assert sqs.released == [("r1", 1)]


async def test_a_function_error_returns_the_whole_batch() -> None:
    sqs = await settle(["a", "b"], RuntimeError("boom"))
    assert sqs.deleted == []
    assert sorted(sqs.released) == [("r0", 1), ("r1", 1)]


@pytest.mark.parametrize("failures", [[{"itemIdentifier": "nope"}], [{"itemIdentifier": ""}]])
async def test_an_unknown_identifier_fails_the_whole_batch_as_in_aws(
    failures: list[dict[str, str]],
) -> None:
    sqs = await settle(["a", "b"], {"batchItemFailures": failures})
    assert sqs.deleted == []
    assert sorted(sqs.released) == [("r0", 1), ("r1", 1)]


async def test_without_report_batch_item_failures_a_success_deletes_everything() -> None:
    sqs = await settle(["a", "b"], {"batchItemFailures": [{"itemIdentifier": "m0"}]}, partial=False)
    assert sorted(sqs.deleted) == ["r0", "r1"]
    assert sqs.released == []


async def test_records_look_like_lambdas_sqs_event() -> None:
    pool = FakePool({"batchItemFailures": []})
    sqs = FakeSQS(["hello"])
    event = SqsEventSpec("Queue", "SummarizeQueue", 10, 0, True, None)
    mapping = EventSourceMapping(sqs, "url", "arn:q", event, pool, pollers=1)  # type: ignore[arg-type]
    mapping.start()
    await asyncio.wait_for(sqs.drained.wait(), timeout=5)
    await mapping.stop()
    record = pool.events[0]["Records"][0]
    assert record["messageId"] == "m0"
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:q"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
