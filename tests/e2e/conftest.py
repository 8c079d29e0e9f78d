"""End-to-end fixtures: the whole local stack (moto, queues, functions, API) on loopback."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.pages import PageServer

TERMINAL = {"done", "failed"}


@pytest.fixture(scope="session")
def pages() -> Iterator[PageServer]:
    """The bundled sample pages and the misbehaving routes, on loopback."""
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """One local stack for the e2e session; failed records come back at once. Its moto runs
    in a process of its own, as in `make bench` (the other stacks of the suite run it on a
    thread), so both ways stay tested."""
    options = StackOptions(
        moto_process=True,
        environment={
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_FETCH_TIMEOUT_S": "1.5",
            "BRIEF_MAX_BODY_BYTES": "300000",
        },
        retry_after_s=0,
    )
    with running_stack(options) as running:
        yield running


@pytest.fixture
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the stack's API."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def aws(stack: LocalStack) -> dict[str, Any]:
    """boto3 clients on the stack's moto server, to look at what a user would find in AWS."""
    kwargs: dict[str, Any] = {
        "endpoint_url": stack.endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    return {"s3": boto3.client("s3", **kwargs), "sqs": boto3.client("sqs", **kwargs)}


def wait_for(api: httpx.Client, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll the job until it is done or failed; its final view."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view: dict[str, Any] = api.get(f"/jobs/{job_id}").raise_for_status().json()
        if view["state"] in TERMINAL:
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {view['state']} after {timeout_s} s")


def events_until(api: httpx.Client, job_id: str, kind: str, timeout_s: float = 10.0) -> list[str]:
    """The kinds of the job's events, once `kind` is among them (the report's own event is
    written just after the report, so it can trail the state by a moment)."""
    deadline = time.monotonic() + timeout_s
    kinds: list[str] = []
    while time.monotonic() < deadline:
        page = api.get(f"/jobs/{job_id}/events").raise_for_status().json()
        kinds = [e["kind"] for e in page["events"]]
        if kind in kinds:
            return kinds
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event for job {job_id}: {kinds}")


def fake_model_stage(models_url: str, **overrides: object) -> dict[str, object]:
    """A model stage (BRIEF_SUMMARIZE_MODEL) on the fake model server's OpenAI-compatible API."""
    return {
        "provider": "openai",
        "model": "fake-small",
        "base_url": f"{models_url}/v1",
        "api_key": "sk-test",
        "context_tokens": 8192,
        "max_output_tokens": 512,
        **overrides,
    }


def store_bare_job(
    stack: LocalStack, aws: dict[str, Any], question: str, job_id: str | None = None
) -> str:
    """A job as the API stores it (its request only), with nothing queued for it."""
    job_id = job_id or secrets.token_hex(16)
    request = {
        "v": 1,
        "job_id": job_id,
        "owner": "anonymous",
        "created_at": "2026-11-26T10:00:00Z",
        "request": {"question": question, "sources": ["http://127.0.0.1/x"]},
    }
    aws["s3"].put_object(
        Bucket=stack.bucket, Key=f"jobs/{job_id}/request.json", Body=json.dumps(request)
    )
    return job_id
