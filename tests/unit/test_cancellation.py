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


async def test_watchers_of_one_job_share_their_reads_and_all_stop_at_its_marker() -> None:
    watch = CancelWatch(grace_s=0.01, poll_s=0.05)

    async def work() -> str:
        await asyncio.sleep(0.6)
        return "done"

    shared, separate = Marker(), Marker()  # a marker that never appears
    results = await asyncio.gather(*(watch.run(shared, work(), shared="job-a") for _ in range(5)))
    await asyncio.gather(*(watch.run(separate, work()) for _ in range(5)))

    assert results == ["done"] * 5
    assert shared.reads * 3 < separate.reads  # one read per poll for the five, not five

    async def slow() -> str:
        await asyncio.sleep(30)
        return "too late"

    marker = Marker(after=3)
    ended = await asyncio.wait_for(
        asyncio.gather(
            *(watch.run(marker, slow(), shared="job-b") for _ in range(5)), return_exceptions=True
        ),
        10,
    )
    assert all(isinstance(e, StoppedByCancel) for e in ended)
    assert marker.reads == 3
