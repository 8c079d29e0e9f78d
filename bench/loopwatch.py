"""Event-loop stalls: a 10 ms ticker on the loop being watched; its largest gap is the stall."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

TICK_S = 0.01


@dataclass
class LoopWatch:
    """The largest gap between two ticks of the ticker, in ms (10 ms when nothing stalls)."""

    max_gap_ms: float = 0.0
    ticks: int = 0

    @property
    def stall_ms(self) -> float:
        """How much longer than its 10 ms the worst tick waited."""
        return max(0.0, self.max_gap_ms - TICK_S * 1000)


@contextlib.asynccontextmanager
async def watching() -> AsyncIterator[LoopWatch]:
    """Tick on the running loop while the block runs."""
    watch = LoopWatch()

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            watch.max_gap_ms = max(watch.max_gap_ms, (now - last) * 1000)
            watch.ticks += 1
            last = now

    task = asyncio.create_task(tick())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
