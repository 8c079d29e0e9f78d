"""No job waits forever: on the local stack, the scheduled sweeper fails a job whose work was
lost, and the user sees why through the API; a job that finished is left as it was.

This stack is the test's own (not the session's): its stall timeout is seconds, not the
template's 40 minutes, which would fail the other tests' jobs mid-flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aioboto3
import boto3
import httpx
import pytest

from brief.adapters.s3 import S3BlobStore
from brief.api.auth import ANONYMOUS
from brief.ids import new_job_id
from brief.jobstore import JobStore
from brief.models import JobRecord, ResearchRequest, utcnow
from brief.pipeline import create_job
from brief.sweeper import SweepReport
from brief_local.stack import REGION, LocalStack, StackOptions, running_stack
from brief_testing.pages import PageServer

from .conftest import events_until, wait_for

STALL_TIMEOUT_S = 6
QUESTION = "How do honeybees decide where to build a new nest?"


@pytest.fixture(scope="module")
def sweeping_stack() -> Iterator[LocalStack]:
    options = StackOptions(
        environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"},
        parameters={"StallTimeoutSeconds": str(STALL_TIMEOUT_S)},
        schedule_every_s=0.5,
        retry_after_s=0,
    )
    with running_stack(options) as running:
        yield running


@pytest.fixture
def api(sweeping_stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sweeping_stack.api_url, timeout=30) as client:
        yield client


def store_job_without_sending_it(stack: LocalStack, sources: list[str]) -> str:
    """What the API does when it crashes between storing a job and queueing its research."""

    async def create() -> str:
        session = aioboto3.Session()
        async with session.client("s3", region_name=REGION, endpoint_url=stack.endpoint) as s3:
            request = ResearchRequest.model_validate({"question": QUESTION, "sources": sources})
            record = JobRecord(
                job_id=new_job_id(), owner=ANONYMOUS, created_at=utcnow(), request=request
            )
            await create_job(JobStore(S3BlobStore(s3, stack.bucket)), record)
            return record.job_id

    return asyncio.run(create())


def open_entries(stack: LocalStack) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    listed: dict[str, Any] = s3.list_objects_v2(Bucket=stack.bucket, Prefix="open/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_job_whose_research_was_never_queued_ends_failed_with_the_reason(
    sweeping_stack: LocalStack, api: httpx.Client, pages: PageServer
) -> None:
    lost = store_job_without_sending_it(sweeping_stack, pages.pages()[:2])
    assert api.get(f"/jobs/{lost}").json()["state"] == "queued"
    finished = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:2]})
    done = finished.json()["job_id"]
    assert wait_for(api, done)["state"] == "done"

    view = wait_for(api, lost, timeout_s=STALL_TIMEOUT_S + 30)

    assert view["state"] == "failed"
    assert view["reason"].startswith("no progress for ")
    assert view["reason"].endswith("(last step: job_created); the job was given up")
    assert events_until(api, lost, "job_failed")[-1] == "job_failed"
    # The finished job is as it was: done, with no failure recorded after its report.
    assert api.get(f"/jobs/{done}").json()["state"] == "done"
    assert "job_failed" not in events_until(api, done, "report_ready")
    # Both jobs have ended, so the sweeper drops them from what it watches.
    deadline = time.monotonic() + STALL_TIMEOUT_S + 30
    while open_entries(sweeping_stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_entries(sweeping_stack) == []


def test_the_sweeper_can_be_run_on_demand(sweeping_stack: LocalStack) -> None:
    (report,) = sweeping_stack.run_schedules_from_thread()
    assert report == SweepReport(open=0, checked=0).as_dict()


def test_the_schedule_stops_with_the_stack(pages: PageServer) -> None:
    options = StackOptions(schedule_every_s=0.05, retry_after_s=0)
    with running_stack(options) as stack:
        (schedule,) = stack.schedules
        deadline = time.monotonic() + 30
        while schedule.invocations < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert schedule.invocations >= 2
    ran = schedule.invocations
    time.sleep(0.3)
    assert schedule.invocations == ran
    assert schedule.failures == 0
