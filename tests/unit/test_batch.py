"""SQS partial batch failures: one bad record is retried alone, its neighbours complete."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from brief.batch import SqsRecord, first_delivery, process_batch, retry_delay_s
from brief.errors import PermanentError, RetryableError, StorageUnavailable
from brief.messages import CombineTask, ResearchTask, parse_task

JOB = "0123456789abcdef0123456789abcdef"


def record(message_id: str, body: str = "") -> dict[str, Any]:
    """An SQS record as Lambda delivers it (the fields the batch looks at)."""
    return {"messageId": message_id, "body": body, "eventSource": "aws:sqs"}


def records(count: int) -> list[dict[str, Any]]:
    return [record(f"m{i}", body=f"body {i}") for i in range(count)]


@pytest.mark.parametrize(
    "error",
    [RetryableError("throttled"), PermanentError("bad input"), ValueError("a bug")],
    ids=["retryable", "permanent", "unexpected"],
)
async def test_one_failing_record_is_reported_alone_and_the_others_complete(
    error: Exception,
) -> None:
    completed: list[str] = []

    async def handle(r: SqsRecord) -> None:
        await asyncio.sleep(0)
        if r["messageId"] == "m2":
            raise error
        completed.append(r["messageId"])

    response = await process_batch(records(5), handle, concurrency=2)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert sorted(completed) == ["m0", "m1", "m3", "m4"]


async def test_every_failing_record_is_reported_once_in_batch_order() -> None:
    async def handle(r: SqsRecord) -> None:
        if r["messageId"] in {"m4", "m1", "m3"}:
            raise RetryableError("throttled")

    response = await process_batch(records(6), handle, concurrency=6)

    assert response["batchItemFailures"] == [
        {"itemIdentifier": "m1"},
        {"itemIdentifier": "m3"},
        {"itemIdentifier": "m4"},
    ]


async def test_a_batch_where_everything_succeeds_reports_no_failures() -> None:
    async def handle(r: SqsRecord) -> None:
        await asyncio.sleep(0)

    assert await process_batch(records(3), handle, concurrency=2) == {"batchItemFailures": []}


async def test_an_empty_batch_reports_no_failures() -> None:
    async def handle(r: SqsRecord) -> None:
        raise AssertionError("no record to handle")

    assert await process_batch([], handle, concurrency=4) == {"batchItemFailures": []}


@pytest.mark.parametrize(("count", "concurrency"), [(10, 3), (5, 1), (4, 8)])
async def test_at_most_concurrency_records_are_handled_at_once(
    count: int, concurrency: int
) -> None:
    in_flight = 0
    peak = 0
    handled: list[str] = []

    async def handle(r: SqsRecord) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):  # stay in flight across several turns of the loop
            await asyncio.sleep(0)
        in_flight -= 1
        handled.append(r["messageId"])

    response = await process_batch(records(count), handle, concurrency=concurrency)

    assert response == {"batchItemFailures": []}
    assert peak == min(count, concurrency)
    assert sorted(handled) == sorted(f"m{i}" for i in range(count))


async def test_a_malformed_body_fails_only_its_own_record() -> None:
    good = ResearchTask(job_id=JOB).model_dump_json()
    batch = [
        record("ok-1", good),
        record("not-json", "{not json"),
        record("wrong-kind", CombineTask(job_id=JOB).model_dump_json()),
        record("traversal", '{"kind": "research", "job_id": "../x"}'),
        record("ok-2", good),
    ]
    ran: list[ResearchTask] = []

    async def run(task: ResearchTask) -> None:
        ran.append(task)

    # As a stage's handler does it: parse inside the per-record call.
    response = await process_batch(
        batch, lambda r: run(parse_task(r["body"], ResearchTask)), concurrency=5
    )

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        "not-json",
        "wrong-kind",
        "traversal",
    ]
    assert ran == [ResearchTask(job_id=JOB), ResearchTask(job_id=JOB)]


async def test_a_failed_record_is_logged_by_message_id_and_reason_without_its_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "PRIVATE DOCUMENT TEXT"
    body = ResearchTask(job_id=JOB).model_dump_json()[:-1] + f', "text": "{secret}"}}'

    async def handle(r: SqsRecord) -> None:
        parse_task(r["body"], ResearchTask)

    with caplog.at_level(logging.WARNING, logger="brief.batch"):
        response = await process_batch([record("m-bad", body)], handle, concurrency=1)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    [logged] = [r for r in caplog.records if r.name == "brief.batch"]
    fields = vars(logged)
    assert fields["message_id"] == "m-bad"
    assert fields["error"] == "InvalidMessage"
    assert fields["reason"] == (
        "not a valid Brief message: research.text: Extra inputs are not permitted"
    )
    assert secret not in str(fields)


async def test_failed_records_are_released_to_come_back_when_worth_retrying() -> None:
    released: list[tuple[str, int]] = []
    errors: dict[str, Exception] = {
        "m0": RetryableError("429", retry_after=2.2),  # the wait the provider named, rounded up
        "m1": RetryableError("S3 503"),  # no wait named: a backoff by receive count
        "m2": PermanentError("bad input"),  # poison: back at once, on its way to the DLQ
        "m3": ValueError("a bug"),  # a crash: the backoff, so it reaches the DLQ in minutes
    }
    batch = records(5)
    batch[1]["attributes"] = {"ApproximateReceiveCount": "3"}

    async def handle(r: SqsRecord) -> None:
        if r["messageId"] in errors:
            raise errors[r["messageId"]]

    async def release(failed: Sequence[tuple[SqsRecord, int]]) -> None:
        released.extend((r["messageId"], seconds) for r, seconds in failed)

    response = await process_batch(batch, handle, concurrency=4, release=release)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["m0", "m1", "m2", "m3"]
    assert sorted(released) == [("m0", 3), ("m1", 120), ("m2", 0), ("m3", 30)]


async def test_a_release_that_fails_still_reports_the_failures() -> None:
    async def handle(r: SqsRecord) -> None:
        raise RetryableError("throttled", retry_after=1)

    async def release(failed: Sequence[tuple[SqsRecord, int]]) -> None:
        raise StorageUnavailable("SQS is down too")

    response = await process_batch(records(2), handle, concurrency=2, release=release)

    assert len(response["batchItemFailures"]) == 2  # they come back after the full timeout


@pytest.mark.parametrize(
    ("received", "expected"), [("1", 30), ("2", 60), ("4", 240), ("9", 900), ("x", 30)]
)
def test_the_backoff_doubles_per_delivery_up_to_a_cap(received: str, expected: int) -> None:
    failed = {"attributes": {"ApproximateReceiveCount": received}}
    assert retry_delay_s(failed) == expected


def test_a_first_delivery_is_one_sqs_says_it_delivers_for_the_first_time() -> None:
    def record(**attributes: str) -> SqsRecord:
        return {"messageId": "m", "body": "{}", "attributes": attributes}

    assert first_delivery(record(ApproximateReceiveCount="1"))
    assert not first_delivery(record(ApproximateReceiveCount="2"))
    assert not first_delivery(record())  # unknown: taken as a redelivery, which reads first
