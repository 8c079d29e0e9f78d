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
from dataclasses import dataclass

import httpx
import pytest

from bench.trace import Recorder, stage_of, until_reported
from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.pages import PageServer

from .test_local_stack import QUESTION

# The calls the seed job makes today, per stage (5 sources, pages not cached yet, the
# offline summarizer, which keeps no model-output cache): 44 in all when its five summaries
# arrive in one SQS batch. Per source: research reads and writes its page's cache entry and
# writes its record; summarize writes its summary; the source's record rides along in its
# summarize message and the summaries in the combine message, and the sources' progress
# events are one object per burst (`brief.eventbatch`). The budget: at most 45, and
# at most 6 more for each extra source.
BUDGET = {"api": 5, "research": 22, "summarize": 10, "combine": 7}
# SQS may split a job's summaries over several batches (pollers race for the messages as
# they land). Each batch more costs summarize up to 5 more (its cancel read, its events'
# object, a claim, and a listing of the summaries for it and for the batch that no longer
# wrote them all), and the combine reads the summaries that did not ride along (up to 5).
EXTRA_BATCH = {"summarize": 5, "combine": 5}


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


@dataclass(frozen=True)
class Counted:
    """One job's calls per stage, and what the stack's timing decided about them."""

    calls: Counter[str]
    ops: Counter[str]
    batches: int  # the SQS batches its summaries arrived in (one cancel read each)
    bursts: dict[str, int]  # per stage, the objects its per-source events took

    def over(self, budget: dict[str, int]) -> dict[str, int]:
        """The stages over `budget`, allowing for extra batches and bursts."""
        allowed = {k: v + EXTRA_BATCH.get(k, 0) * (self.batches - 1) for k, v in budget.items()}
        allowed["research"] += self.bursts["research"] - 1
        allowed["summarize"] += self.bursts["summarize"] - self.batches
        return {k: v for k, v in self.calls.items() if v > allowed.get(k, 0)}

    def fixed(self) -> int:
        """All calls, less those that extra batches and bursts cost."""
        extra = sum(EXTRA_BATCH.values()) * (self.batches - 1)
        extra += self.bursts["research"] - 1 + self.bursts["summarize"] - self.batches
        return sum(self.calls.values()) - extra


def run_counted(stack: LocalStack, recorder: Recorder, sources: list[str]) -> Counted:
    """Run one job through the stack and count its calls per stage."""
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
    ops = Counter(f"{stage_of(c.thread)} {c.operation}" for c in recorder.calls)

    def written(stage: str, *kinds: str) -> int:
        return sum(
            1
            for c in recorder.calls
            if stage_of(c.thread) == stage
            and c.operation == "PutObject"
            and "/events/" in c.detail
            and any(f"-{kind}" in c.detail for kind in kinds)
        )

    # One read of the cancel marker per batch of its summaries (its records share it).
    batches = sum(
        1
        for c in recorder.calls
        if stage_of(c.thread) == "summarize" and c.detail.endswith("/cancelled.json")
    )
    bursts = {
        "research": written("research", "source_fetched", "source_failed"),
        "summarize": written("summarize", "summary_done", "summary_failed"),
    }
    assert 1 <= batches <= len(sources)
    assert 1 <= bursts["research"] <= len(sources)
    assert batches <= bursts["summarize"] <= len(sources)
    return Counted(calls, ops, batches, bursts)


def test_the_seed_job_stays_within_its_call_budget(
    counted: tuple[LocalStack, Recorder], pages: PageServer
) -> None:
    stack, recorder = counted
    sources = [f"{url}?budget=1" for url in pages.pages()[:5]]  # pages no job fetched yet
    job = run_counted(stack, recorder, sources)

    assert job.over(BUDGET) == {}, f"calls by operation: {dict(job.ops)}"
    assert job.fixed() <= 45


def test_each_extra_source_costs_at_most_six_calls(
    counted: tuple[LocalStack, Recorder], pages: PageServer
) -> None:
    stack, recorder = counted
    five = run_counted(stack, recorder, [f"{u}?extra=5" for u in pages.pages()[:5]])
    six = run_counted(stack, recorder, [f"{u}?extra=6" for u in pages.pages()[:6]])

    assert six.fixed() - five.fixed() <= 6, f"{dict(five.ops)} then {dict(six.ops)}"
