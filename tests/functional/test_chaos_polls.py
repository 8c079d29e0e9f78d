"""The chaos harness outlasts a dropped connection or a 5xx while it watches the jobs.

Its polls of GET /jobs/{id} only tell it when to stop waiting (the invariants are read from
the bucket), so one lost answer must not end a run of hundreds of jobs; an API that stays
unreachable still ends it, with the transport's error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from brief_testing import chaos

JOB = "0" * 32


def flaky_api(failures: list[Callable[[httpx.Request], httpx.Response]]) -> httpx.AsyncClient:
    """An API whose GET /jobs/{id} fails as `failures` say, in turn, then answers `done`."""
    polls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/jobs/{JOB}"
        polls.append(request)
        if len(polls) <= len(failures):
            return failures[len(polls) - 1](request)
        return httpx.Response(200, json={"job_id": JOB, "state": "done"})

    return httpx.AsyncClient(base_url="http://api.test", transport=httpx.MockTransport(handler))


def reset(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)


def unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"title": "busy"})


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff's sleeps, without the wait (virtual time)."""

    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", instant)


async def test_a_poll_that_meets_a_reset_or_a_5xx_is_tried_again() -> None:
    jobs = {JOB: "queued"}
    async with flaky_api([reset, unavailable, reset]) as api:
        await chaos._wait_all(api, jobs, time.monotonic() + 60, progress=None)
    assert jobs == {JOB: "done"}


async def test_an_api_that_stays_unreachable_still_ends_the_run_with_its_error() -> None:
    jobs = {JOB: "queued"}
    async with flaky_api([reset] * chaos.POLL_ATTEMPTS) as api:
        with pytest.raises(httpx.ReadError, match="reset by peer"):
            await chaos._wait_all(api, jobs, time.monotonic() + 60, progress=None)
    assert jobs == {JOB: "queued"}
