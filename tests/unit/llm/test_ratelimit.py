"""The shared rate limiter, on virtual time: no test sleeps for real.

Each "call" holds its slot for a while of virtual time, like a model answering.
"""

from __future__ import annotations

import asyncio

import pytest

from brief.llm.errors import ModelRetryable
from brief.llm.ratelimit import WINDOW_S, RateLimiter
from tests.unit.llm.clock import VirtualTime


class Calls:
    """Runs calls through a limiter and records when each started and how many overlapped."""

    def __init__(self, limiter: RateLimiter, time: VirtualTime) -> None:
        self.limiter = limiter
        self.time = time
        self.starts: list[tuple[float, int]] = []  # (when, tokens)
        self.in_flight = 0
        self.most_in_flight = 0

    async def one(self, estimate: int, *, actual: int | None = None, lasts: float = 1.0) -> None:
        async with self.limiter.slot(estimate) as slot:
            self.starts.append((self.time.now, actual if actual is not None else estimate))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await self.time.sleep(lasts)
            finally:
                self.in_flight -= 1
            slot.settle(actual if actual is not None else estimate)

    async def many(self, count: int, estimate: int = 10, **kwargs: float | int) -> None:
        await asyncio.gather(*(self.one(estimate, **kwargs) for _ in range(count)))  # type: ignore[arg-type]

    def busiest_window(self) -> tuple[int, int]:
        """The most requests and tokens that started within any 60 s window."""
        most_requests = most_tokens = 0
        for start, _ in self.starts:
            inside = [t for s, t in self.starts if start <= s < start + WINDOW_S]
            most_requests = max(most_requests, len(inside))
            most_tokens = max(most_tokens, sum(inside))
        return most_requests, most_tokens


async def test_never_more_calls_in_flight_than_the_concurrency_bound() -> None:
    time = VirtualTime()
    limiter = RateLimiter(5, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)
    await time.run(calls.many(50, lasts=1.0))
    assert calls.most_in_flight == 5
    assert limiter.max_in_flight == 5
    assert time.now == pytest.approx(10.0)  # 50 calls, 5 at a time, 1 s each: no idling


async def test_requests_per_minute_are_never_exceeded_in_any_window() -> None:
    time = VirtualTime()
    limiter = RateLimiter(50, rpm=10, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)
    await time.run(calls.many(35, lasts=0.1))
    requests, _ = calls.busiest_window()
    assert requests == 10
    assert len(calls.starts) == 35
    # 35 requests at 10 per minute: the last batch starts after three full windows, no later.
    assert calls.starts[-1][0] == pytest.approx(3 * WINDOW_S, abs=0.5)


async def test_tokens_per_minute_are_never_exceeded_in_any_window() -> None:
    time = VirtualTime()
    limiter = RateLimiter(50, tpm=1_000, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)
    await time.run(calls.many(12, estimate=300, lasts=0.5))
    _, tokens = calls.busiest_window()
    assert tokens <= 1_000
    assert len(calls.starts) == 12
    assert time.now < 4 * WINDOW_S + 1  # 3 calls a minute: four minutes, not more


async def test_settling_a_smaller_actual_count_frees_budget_for_the_next_call() -> None:
    time = VirtualTime()
    limiter = RateLimiter(1, tpm=1_000, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)
    # Each call reserves 600 (prompt + max_tokens) but really uses 100: five fit at once
    # (100 * 4 used + 600 reserved), where without settling only one would.
    await time.run(calls.many(5, estimate=600, actual=100, lasts=0.1))
    assert time.now == pytest.approx(0.5)
    await time.run(calls.many(1, estimate=600, actual=100, lasts=0.1))
    assert time.now >= WINDOW_S  # the sixth has to wait for the first to leave the window


async def test_a_call_larger_than_the_whole_token_budget_runs_alone() -> None:
    time = VirtualTime()
    limiter = RateLimiter(4, tpm=1_000, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)
    await time.run(asyncio.gather(calls.one(100), calls.one(5_000), calls.one(100)))
    starts = sorted(s for s, _ in calls.starts)
    assert len(starts) == 3
    big = next(s for s, t in calls.starts if t == 5_000)
    assert all(abs(s - big) >= WINDOW_S - 1e-6 for s, t in calls.starts if t != 5_000)


async def test_a_429_pauses_every_caller_until_its_retry_after() -> None:
    time = VirtualTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    calls = Calls(limiter, time)

    async def call_that_is_throttled() -> None:
        async with limiter.slot(10):
            await time.sleep(0.5)
            raise ModelRetryable("429", retry_after=30.0, throttled=True)

    async def throttled() -> None:
        with pytest.raises(ModelRetryable):
            await call_that_is_throttled()

    async def later() -> None:
        await time.sleep(1.0)  # arrive after the 429
        await calls.many(5, lasts=0.1)

    await time.run(asyncio.gather(throttled(), later()))
    assert limiter.paused_until == pytest.approx(30.5)
    assert all(start >= 30.5 for start, _ in calls.starts)


async def test_callers_a_pause_held_all_resume_when_it_ends_even_if_one_is_throttled_again() -> (
    None
):
    # As each would after its own Retry-After: the first caller's next 429 must not hold
    # back the others that were already waiting (in a storm, that halved the throughput).
    time = VirtualTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    limiter.pause(1.0)
    starts: list[float] = []

    async def call(n: int) -> None:
        async with limiter.slot(10):
            starts.append(time.now)
            if n == 0:
                raise ModelRetryable("429", retry_after=1.0, throttled=True)
            await time.sleep(0.3)

    outcomes = await time.run(asyncio.gather(*(call(n) for n in range(5)), return_exceptions=True))
    assert sum(isinstance(o, ModelRetryable) for o in outcomes) == 1
    assert starts == pytest.approx([1.0] * 5)
    assert limiter.paused_until == pytest.approx(2.0)  # new calls still wait for the new pause


async def test_a_new_caller_waits_for_the_pause_it_found_not_for_every_extension() -> None:
    # In a storm every 429 extends the pause; a caller that waited for each extension would
    # wait for as long as anyone kept being throttled.
    time = VirtualTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    limiter.pause(1.0)
    starts: list[float] = []

    async def extend() -> None:
        for _ in range(4):
            await time.sleep(0.5)
            limiter.pause(1.0)

    async def call() -> None:
        async with limiter.slot(10):
            starts.append(time.now)

    await time.run(asyncio.gather(extend(), call()))
    assert starts == pytest.approx([1.0])
    assert limiter.paused_until == pytest.approx(3.0)


async def test_the_retry_of_a_throttled_call_is_not_held_by_the_pause_others_extended() -> None:
    # It already waited the Retry-After the provider gave it, as an SDK's retry would.
    time = VirtualTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    limiter.pause(1.0)
    async with limiter.slot(10, after_throttle=True):
        assert time.now == 0.0


async def test_a_throttle_without_retry_after_still_pauses_briefly() -> None:
    time = VirtualTime()
    limiter = RateLimiter(2, clock=time.clock, sleep=time.sleep)
    with pytest.raises(ModelRetryable):
        async with limiter.slot(1):
            raise ModelRetryable("529", throttled=True)
    assert limiter.paused_until == pytest.approx(1.0)


async def test_a_failure_that_is_not_a_throttle_pauses_no_one() -> None:
    limiter = RateLimiter(2)
    with pytest.raises(ModelRetryable):
        async with limiter.slot(1):
            raise ModelRetryable("500")
    assert limiter.paused_until == 0.0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(1, rpm=0)
