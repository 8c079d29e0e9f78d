"""Virtual time for rate-limit and retry tests: sleeps advance a clock, nothing waits."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

_SETTLE_YIELDS = 25
_MAX_STEPS = 200_000


class VirtualTime:
    """`clock` and `sleep` for code under test; `run` drives a coroutine to completion,
    moving the clock to the next sleeper's wake-up time whenever everything else waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, awaitable: Awaitable[T]) -> T:
        task = asyncio.ensure_future(awaitable)
        for _ in range(_MAX_STEPS):
            for _ in range(_SETTLE_YIELDS):
                if task.done():
                    return task.result()
                await asyncio.sleep(0)
            while self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    self.now = max(self.now, wake)
                    future.set_result(None)
                    break
        task.cancel()
        raise AssertionError("virtual time ran out of steps: something waits forever")
