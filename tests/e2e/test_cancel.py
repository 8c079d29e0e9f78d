"""Cancel on the local stack stops work in flight: a page that takes `SLOW_S` to answer, and a
model whose every answer takes `SLOW_S`. The invocation doing that work must end, its record
acknowledged, well before the slow work would have, and write nothing after the cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer
from brief_testing.pages import SAMPLES, PageServer

from .conftest import events_until, fake_model_stage

QUESTION = (SAMPLES / "question.txt").read_text().strip()
SLOW_S = 30  # the slow page's delay, and every model answer's latency
STOPPED_WITHIN_S = SLOW_S / 2  # generous: the stage looks for the cancel every half second


@pytest.fixture(scope="module")
def models() -> Iterator[FakeModelServer]:
    with FakeModelServer(api_keys=["sk-test"], latency_s=SLOW_S) as server:
        yield server


@pytest.fixture(scope="module")
def slow_stack(models: FakeModelServer) -> Iterator[LocalStack]:
    """A stack that waits a slow page and a slow model out, if nothing stops it."""
    options = StackOptions(
        environment={
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_FETCH_TIMEOUT_S": str(SLOW_S * 2),
            "BRIEF_FETCH_READ_TIMEOUT_S": str(SLOW_S * 2),
            "BRIEF_RETRIEVAL_DEADLINE_S": str(SLOW_S * 2),
            "BRIEF_SUMMARIZE_MODEL": json.dumps(
                fake_model_stage(models.url, timeout_s=SLOW_S * 2, attempts=1)
            ),
        },
        retry_after_s=0,
    )
    with running_stack(options) as stack:
        yield stack


@pytest.fixture
def api(slow_stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slow_stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def sqs(slow_stack: LocalStack) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=slow_stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def in_flight(sqs: Any, stack: LocalStack, queue: str) -> int:
    """Messages of `queue` received and not yet deleted: an invocation still working."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.queue_urls[queue], AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def cancel_and_wait(
    api: httpx.Client, sqs: Any, stack: LocalStack, job_id: str, queue: str
) -> tuple[float, float]:
    """Cancel the job; seconds until its `job_cancelled` event is listed, and until the
    `queue` record being worked on is acknowledged (both well within `STOPPED_WITHIN_S`)."""
    assert in_flight(sqs, stack, queue) == 1
    cancelled_at = time.monotonic()
    response = api.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 202, response.text
    events_until(api, job_id, "job_cancelled", timeout_s=STOPPED_WITHIN_S)
    event_s = time.monotonic() - cancelled_at
    while in_flight(sqs, stack, queue) and time.monotonic() - cancelled_at < STOPPED_WITHIN_S:
        time.sleep(0.05)
    acked_s = time.monotonic() - cancelled_at
    assert in_flight(sqs, stack, queue) == 0, f"the {queue} record is still being worked on"
    return event_s, acked_s


def test_a_cancel_stops_a_slow_page_long_before_it_answers(
    api: httpx.Client, sqs: Any, slow_stack: LocalStack, pages: PageServer
) -> None:
    slow = f"{pages.url}/bytes/100?delay={SLOW_S}"
    job_id = api.post("/jobs", json={"question": QUESTION, "sources": [slow]}).json()["job_id"]
    events_until(api, job_id, "retrieval_started", timeout_s=STOPPED_WITHIN_S)

    event_s, acked_s = cancel_and_wait(api, sqs, slow_stack, job_id, "IntakeQueue")

    assert max(event_s, acked_s) < STOPPED_WITHIN_S  # the page would answer at SLOW_S
    time.sleep(1)  # anything the stopped invocation could still write would be there now
    kinds = [e["kind"] for e in api.get(f"/jobs/{job_id}/events").json()["events"]]
    assert kinds == ["job_created", "retrieval_started", "job_cancelled"]
    view = api.get(f"/jobs/{job_id}").json()
    assert view["state"] == "cancelled"
    assert view["sources"] == []  # retrieval never finished, and nothing was stored for it
    again = api.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_a_cancel_stops_a_slow_model_call_long_before_it_answers(
    api: httpx.Client, sqs: Any, slow_stack: LocalStack, pages: PageServer, models: FakeModelServer
) -> None:
    job_id = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:1]}).json()[
        "job_id"
    ]
    deadline = time.monotonic() + STOPPED_WITHIN_S
    while models.stats.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert models.stats.in_flight == 1, "the summary's model call has started"

    event_s, acked_s = cancel_and_wait(api, sqs, slow_stack, job_id, "SummarizeQueue")

    assert max(event_s, acked_s) < STOPPED_WITHIN_S  # the model would answer at SLOW_S
    time.sleep(1)
    kinds = [e["kind"] for e in api.get(f"/jobs/{job_id}/events").json()["events"]]
    assert kinds[-1] == "job_cancelled"
    assert "summary_done" not in kinds
    view = api.get(f"/jobs/{job_id}").json()
    assert view["state"] == "cancelled"
    assert view["summaries_done"] == 0
    assert models.stats.completed == 0  # no answer was waited for, or billed
