"""The deployed stack, end to end: a job with public sources, through API Gateway, to its
report. Runs only against a stack named by `AWS_SAM_STACK_NAME` (with AWS credentials and
region in the environment, as for `sam deploy`); `BRIEF_API_KEY` is sent as the bearer
token when the deployment requires keys. Skipped otherwise, saying so.

    AWS_SAM_STACK_NAME=brief .venv/bin/python -m pytest tests/e2e/test_deployed.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

STACK = os.environ.get("AWS_SAM_STACK_NAME", "")
SOURCES = [
    "https://en.wikipedia.org/wiki/Swarming_(honey_bee)",
    "https://en.wikipedia.org/wiki/Waggle_dance",
]
QUESTION = "How do honeybees decide where to build a new nest?"
TERMINAL = {"done", "failed"}
# A cold pipeline: four cold starts, real fetches and, with a real model, real summaries.
JOB_TIMEOUT_S = float(os.environ.get("BRIEF_E2E_TIMEOUT_S", "300"))

pytestmark = pytest.mark.skipif(
    not STACK, reason="AWS_SAM_STACK_NAME is not set: no deployed stack to test"
)


@pytest.fixture(scope="module")
def api_url() -> str:
    """The stack's ApiUrl output, as CloudFormation reports it."""
    stacks = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    assert "ApiUrl" in outputs, f"{STACK} has no ApiUrl output: {sorted(outputs)}"
    url: str = outputs["ApiUrl"]
    return url.rstrip("/")


@pytest.fixture
def api(api_url: str) -> Iterator[httpx.Client]:
    key = os.environ.get("BRIEF_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        yield client


def test_health(api: httpx.Client) -> None:
    assert api.get("/health").status_code == 200


def test_a_job_with_public_sources_reaches_its_cited_report(api: httpx.Client) -> None:
    created = api.post("/jobs", json={"question": QUESTION, "sources": SOURCES})
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]

    deadline = time.monotonic() + JOB_TIMEOUT_S
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = api.get(f"/jobs/{job_id}").raise_for_status().json()
        if view["state"] in TERMINAL:
            break
        time.sleep(2)
    assert view.get("state") == "done", f"job {job_id}: {view}"
    assert [s["state"] for s in view["sources"]] == ["ok", "ok"], view["sources"]

    report = api.get(f"/jobs/{job_id}/report").raise_for_status().json()
    assert {c["url"] for c in report["citations"]} <= set(SOURCES)
    markdown = api.get(f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"}).text
    assert markdown.startswith(f"# {QUESTION}")
    assert "[1]" in markdown


def test_an_unknown_job_is_a_problem_404(api: httpx.Client) -> None:
    response = api.get("/jobs/" + "0" * 32)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
