"""The cancel watch: quick work costs no read; slow work stops soon after the marker appears."""

from __future__ import annotations

import asyncio

import pytest

from brief.cancellation import CancelWatch, StoppedByCancel
from brief.errors import RetryableError, SourceError


class Marker:
    """A cancel marker that appears after `after` reads (never, when None)."""

    def __init__(self, after: int | None = None, *, failing: int = 0) -> None:
        self.after = after
        self.failing = failing
        self.reads = 0

    async def __call__(self) -> bool:
        self.reads += 1
        if self.reads <= self.failing:
            raise RetryableError("S3 is slow down")
        return self.after is not None and self.reads >= self.after


async def test_work_that_ends_within_the_grace_reads_no_marker() -> None:
    marker = Marker(after=1)

    async def quick() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await CancelWatch(grace_s=5, poll_s=0.01).run(marker, quick()) == "done"
    assert marker.reads == 0


async def test_slow_work_is_stopped_once_the_marker_appears() -> None:
    marker = Marker(after=3, failing=1)  # a failed read is retried at the next poll
    stopped = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "too late"

    with pytest.raises(StoppedByCancel):
        await asyncio.wait_for(CancelWatch(grace_s=0.01, poll_s=0.01).run(marker, slow()), 10)
    assert stopped.is_set()  # the work unwound before the watch raised
    assert marker.reads == 3


async def test_the_works_own_error_is_raised_unchanged_and_nothing_keeps_running() -> None:
    marker = Marker()

    async def failing() -> None:
        await asyncio.sleep(0.05)
        raise SourceError("the page is gone")

    before = asyncio.all_tasks()
    with pytest.raises(SourceError, match="the page is gone"):
        await CancelWatch(grace_s=0.01, poll_s=0.01).run(marker, failing())
    assert marker.reads > 0
    assert asyncio.all_tasks() == before  # the watcher ended with the work
