"""What one job costs in S3 and SQS calls, per stage, on the local stack: a test that fails if
the seed job (5 sources) needs more calls than its budget.

Calls are counted by the stack's client hook (every attempt of every call each function's
clients make), with the cancel watch's polls turned off (`BRIEF_CANCEL_POLL_S`; they cost one
GET per job per container every poll, and depend on how long the work takes)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.trace import Recorder, stage_of, until_reported
from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.pages import PageServer

from .test_local_stack import QUESTION

# The calls the seed job makes today, per stage (5 sources, pages not cached yet, the
# offline summarizer, which keeps no model-output cache): 64 in all when its five summaries
# arrive in one SQS batch, whose records share one read of the cancel marker and one fan-in
# (one listing, one claim). SQS may split them over several batches (pollers race for the
# messages as they land): each batch more costs up to 3 more (its cancel read, its fan-in's
# listing, and a claim), and its fan-in's listing says how many there were. A source's page
# costs research one read and one write of its cache entry (the body is in the entry). The
# issue's target is 45 in all: not reached (each source still costs a progress event in two
# stages).
BUDGET = {"api": 5, "research": 26, "summarize": 20, "combine": 13}
EXTRA_BATCH = 3


@pytest.fixture(scope="module")
def counted() -> Iterator[tuple[LocalStack, Recorder]]:
    recorder = Recorder()
    options = StackOptions(
        environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1", "BRIEF_CANCEL_POLL_S": "3600"},
        client_hook=recorder.install,
        retry_after_s=0,
    )
    with running_stack(options) as stack:
        yield stack, recorder


def test_the_seed_job_stays_within_its_call_budget(
    counted: tuple[LocalStack, Recorder], pages: PageServer
) -> None:
    stack, recorder = counted
    sources = [f"{url}?budget=1" for url in pages.pages()[:5]]  # pages no job fetched yet
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        recorder.calls.clear()
        created = api.post("/jobs", json={"question": QUESTION, "sources": sources})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        api_calls = Counter(stage_of(c.thread) for c in recorder.calls)["api"]
    asyncio.run(until_reported(stack, job_id))  # TimeoutError if it never comes
    time.sleep(1.0)  # the writes beside report.json (report.md, the page cache) land
    calls: Counter[str] = Counter(stage_of(c.thread) for c in recorder.calls)
    calls["api"] = api_calls
    ops: dict[str, Any] = Counter(f"{stage_of(c.thread)} {c.operation}" for c in recorder.calls)

    batches = ops["summarize ListObjectsV2"]  # one fan-in listing per batch of its summaries
    assert 1 <= batches <= 5
    budget = {**BUDGET, "summarize": BUDGET["summarize"] + EXTRA_BATCH * (batches - 1)}
    over = {k: v for k, v in calls.items() if v > budget.get(k, 0)}
    assert over == {}, f"over budget: {over}; calls by operation: {dict(ops)}"
