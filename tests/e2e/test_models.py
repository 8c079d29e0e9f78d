"""A job with a real model provider (OpenAI-compatible, served by the fake model server on
loopback): tokens and cost reach the report and the job's status, and a repeated job is
served from the cache without a model call."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer
from brief_testing.pages import PageServer

from .conftest import fake_model_stage, wait_for

QUESTION = "How do honeybees decide where to build a new nest?"


@pytest.fixture(scope="module")
def models() -> Iterator[FakeModelServer]:
    with FakeModelServer(api_keys=["sk-test"]) as server:
        yield server


@pytest.fixture(scope="module")
def model_stack(models: FakeModelServer) -> Iterator[LocalStack]:
    stage = fake_model_stage(models.url)
    options = StackOptions(
        environment={
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_SUMMARIZE_MODEL": json.dumps(stage),
            "BRIEF_MODEL_PRICES": json.dumps({"openai:fake-small": [1.0, 2.0]}),
        },
        retry_after_s=0,
    )
    with running_stack(options) as stack:
        yield stack


def test_a_job_with_a_model_provider_reports_tokens_and_cost(
    model_stack: LocalStack, models: FakeModelServer, pages: PageServer
) -> None:
    with httpx.Client(base_url=model_stack.api_url, timeout=30) as api:
        sources = pages.pages()[:3]
        created = api.post("/jobs", json={"question": QUESTION, "sources": sources})
        job_id = created.json()["job_id"]
        view = wait_for(api, job_id, timeout_s=60)
        assert view["state"] == "done", view
        assert view["usage"]["calls"] == 4  # three summaries and one combine
        assert view["usage"]["cost_usd"] > 0
        assert set(view["stage_usage"]) == {"summarize", "combine"}
        billed = models.stats
        assert view["usage"]["input_tokens"] == billed.input_tokens
        assert view["usage"]["output_tokens"] == billed.output_tokens

        report = api.get(f"/jobs/{job_id}/report").json()
        assert report["model"].startswith("openai:fake-small")
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", report["markdown"])}
        assert cited <= {1, 2, 3}

        requests_before = models.stats.requests
        again = api.post("/jobs", json={"question": QUESTION, "sources": sources}).json()
        repeat = wait_for(api, again["job_id"], timeout_s=60)
        assert repeat["state"] == "done"
        time.sleep(0.2)
        assert models.stats.requests == requests_before  # served from the cache
