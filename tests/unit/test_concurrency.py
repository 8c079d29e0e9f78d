"""One round of named reads: every read runs at once, each result lands under its name, and
a failed read leaves nothing running behind it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from brief.concurrency import at_once, nothing


@dataclass(frozen=True)
class Round:
    job: str
    count: int
    absent: None


async def test_each_result_lands_under_its_name_and_the_reads_run_together() -> None:
    started: list[str] = []
    both_started = asyncio.Event()

    async def read(name: str, value: object) -> object:
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=10)  # each waits for the other
        return value

    result = await at_once(Round, job=read("job", "j"), count=read("count", 3), absent=nothing())

    assert result == Round(job="j", count=3, absent=None)


async def test_a_failed_read_cancels_the_others_and_is_raised_unchanged() -> None:
    cancelled = asyncio.Event()
    failure = LookupError("no such job")

    async def slow() -> int:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    async def failing() -> str:
        await asyncio.sleep(0)
        raise failure

    with pytest.raises(LookupError) as raised:
        await at_once(Round, job=failing(), count=slow(), absent=nothing())

    assert raised.value is failure
    assert cancelled.is_set()  # cancelled before at_once returned, not left running
