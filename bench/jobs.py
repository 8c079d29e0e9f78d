"""Brief jobs through the local stack's HTTP API: submit, wait, and read the timeline back.

A job's duration is measured from just before its POST to its `report_ready` event's own
timestamp (the stack and the benchmark share one clock), so the polling interval adds nothing
to the figure; polling only decides when the benchmark notices.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

TERMINAL = {"done", "failed", "cancelled"}
LAST_EVENTS = {"report_ready", "job_failed", "job_cancelled"}


@dataclass
class Job:
    """One submitted job and what became of it."""

    job_id: str
    submitted_at: float  # time.time() just before the POST
    state: str = "queued"
    events: list[dict[str, Any]] = field(default_factory=list)

    def at(self, kind: str) -> float | None:
        """Seconds since submission of the last event of `kind`, if it happened."""
        times = [_seconds(e["at"]) for e in self.events if e["kind"] == kind]
        return max(times) - self.submitted_at if times else None

    @property
    def duration_s(self) -> float | None:
        """Submission to `report_ready`; None when the job has no report."""
        return self.at("report_ready")


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def submit(
    api: httpx.AsyncClient,
    question: str,
    sources: list[str],
    options: dict[str, Any] | None = None,
) -> Job:
    """POST /jobs (with the request's other fields, `options`); the job as accepted."""
    submitted = time.time()
    request = {"question": question, "sources": sources, **(options or {})}
    answer = await api.post("/jobs", json=request)
    answer.raise_for_status()
    return Job(answer.json()["job_id"], submitted)


async def wait(
    api: httpx.AsyncClient,
    jobs: list[Job],
    *,
    timeout_s: float,
    every_s: float = 0.1,
    concurrency: int = 8,
) -> None:
    """Poll GET /jobs/{id} until every job has ended or `timeout_s` passes, then read each
    job's events (GET /jobs/{id}/events, every page)."""
    bound = asyncio.Semaphore(concurrency)

    async def poll(job: Job) -> None:
        async with bound:
            answer = await api.get(f"/jobs/{job.job_id}")
            answer.raise_for_status()
            job.state = answer.json()["state"]

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [j for j in jobs if j.state not in TERMINAL]
        if not pending:
            break
        await asyncio.gather(*(poll(j) for j in pending))
        if any(j.state not in TERMINAL for j in jobs):
            await asyncio.sleep(every_s)
    await asyncio.gather(*(_read_events(api, j, bound) for j in jobs))


async def _read_events(api: httpx.AsyncClient, job: Job, bound: asyncio.Semaphore) -> None:
    """Every event of the job. A job's state turns `done` when its report is stored, a moment
    before its `report_ready` event is written: an ended job is read until its last event is
    there (for up to 5 s)."""
    cursor: str | None = None
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    async with bound:
        while True:
            params = {"after": cursor} if cursor else {}
            answer = await api.get(f"/jobs/{job.job_id}/events", params=params)
            page = answer.raise_for_status().json()
            events += page["events"]
            cursor = page["cursor"] or cursor
            ended = any(e["kind"] in LAST_EVENTS for e in events)
            if ended or job.state not in TERMINAL or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    job.events = events


async def run_one(
    api: httpx.AsyncClient,
    question: str,
    sources: list[str],
    *,
    timeout_s: float = 120.0,
    options: dict[str, Any] | None = None,
) -> Job:
    """Submit one job and wait for it."""
    job = await submit(api, question, sources, options)
    await wait(api, [job], timeout_s=timeout_s, every_s=0.25)
    return job
