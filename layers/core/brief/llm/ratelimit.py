"""A rate limiter shared by every model call in a container: concurrency, RPM, TPM, cooldown.

Providers limit requests per minute and tokens per minute; going over earns 429s, and a
fan-out of summaries that each retry on their own only earns more. So every call to one
model takes a slot here first:

    async with limiter.slot(estimated_tokens) as slot:
        completion = await model.complete(...)
        slot.settle(completion.input_tokens + completion.output_tokens)

`slot` waits for a concurrency slot, then until the last 60 s hold room for one more
request and `estimated_tokens` more tokens (a sliding window: no 60 s window ever holds more
than `rpm` requests or `tpm` tokens, which is stricter than the providers' token buckets),
then records the request. `settle` replaces the estimate with what the call really used. A
throttled call (`ModelRetryable` with `throttled`) raised out of the block pauses *every*
caller that arrives meanwhile until its Retry-After has passed, instead of each hammering the
provider in turn; the callers a pause held resume together when it ends, and a throttled
call's own retry, which waited for its own Retry-After, is not held again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["WINDOW_S", "RateLimiter", "Slot"]

WINDOW_S = 60.0
# A throttled call that names no wait pauses everyone this long.
DEFAULT_COOLDOWN_S = 1.0


@dataclass(slots=True, eq=False)
class _Entry:
    at: float
    tokens: int
    expired: bool = False


class Slot:
    """One admitted call; `settle` corrects its token count once the usage is known."""

    __slots__ = ("_entry", "_limiter")

    def __init__(self, limiter: RateLimiter, entry: _Entry) -> None:
        self._limiter = limiter
        self._entry = entry

    def settle(self, actual_tokens: int) -> None:
        """Count `actual_tokens` for this call instead of its estimate."""
        self._limiter._settle(self._entry, actual_tokens)


class RateLimiter:
    """Limits for one model (or one API key), shared by all concurrent calls to it."""

    def __init__(
        self,
        concurrency: int,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if (rpm is not None and rpm < 1) or (tpm is not None and tpm < 1):
            raise ValueError("rpm and tpm must be at least 1 when set")
        self.concurrency = concurrency
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._admission = asyncio.Lock()  # callers are admitted one at a time, in order
        self._window: deque[_Entry] = deque()
        self._window_tokens = 0
        self._paused_until = 0.0
        self.in_flight = 0
        self.max_in_flight = 0  # the most calls ever in flight at once (for tests, metrics)
        self.waited_s = 0.0  # total time callers spent waiting for budget or cooldown

    @property
    def paused_until(self) -> float:
        """Clock time before which no call starts (a shared cooldown after a 429)."""
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """Start no new call for `seconds` from now (extends, never shortens, a pause)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    @asynccontextmanager
    async def slot(
        self, estimated_tokens: int, *, after_throttle: bool = False
    ) -> AsyncIterator[Slot]:
        """Wait for room for one call of about `estimated_tokens`, then hold it.

        `after_throttle`: this call retries one that was throttled, and has already waited
        the Retry-After the provider gave it; the shared pause (which other callers' 429s may
        have extended meanwhile) does not hold it again, as it would not hold an SDK's retry.
        """
        async with self._slots:
            entry = await self._admit(max(0, estimated_tokens), after_throttle=after_throttle)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield Slot(self, entry)
            except BaseException as exc:
                if getattr(exc, "throttled", False):
                    retry_after = getattr(exc, "retry_after", None)
                    self.pause(DEFAULT_COOLDOWN_S if retry_after is None else retry_after)
                raise
            finally:
                self.in_flight -= 1

    async def _admit(self, tokens: int, *, after_throttle: bool) -> _Entry:
        pause = self._paused_until - self._clock()
        if pause > 0 and not after_throttle:
            # The pause in effect on arrival, once, and outside the admission lock: callers it
            # holds resume together when it ends. Waiting for every later extension instead
            # (each 429 of any caller extends it) held calls through a storm for as long as
            # some call kept being throttled: in the 429 storm of `make bench`, jobs took
            # 2.5x as long as an in-process peer's.
            self.waited_s += pause
            await self._sleep(pause)
        async with self._admission:  # the RPM and TPM budgets admit callers in order
            while True:
                now = self._clock()
                wait = self._wait(now, tokens)
                if wait <= 0:
                    entry = _Entry(now, tokens)
                    self._window.append(entry)
                    self._window_tokens += tokens
                    return entry
                self.waited_s += wait
                await self._sleep(wait)

    def _wait(self, now: float, tokens: int) -> float:
        """Seconds until the RPM and TPM budgets have room for a call of `tokens` (0 or
        less: now)."""
        window = self._window
        while window and window[0].at <= now - WINDOW_S:
            old = window.popleft()
            old.expired = True
            self._window_tokens -= old.tokens
        wait = 0.0
        if self.rpm is not None and len(window) >= self.rpm:
            wait = window[len(window) - self.rpm].at + WINDOW_S - now
        if self.tpm is not None and window and self._window_tokens + tokens > self.tpm:
            # Wait until enough of the oldest calls leave the window; a call larger than
            # the whole budget runs alone, once the window is empty.
            excess = self._window_tokens + tokens - self.tpm
            freed = 0
            for entry in window:
                freed += entry.tokens
                if freed >= excess:
                    wait = max(wait, entry.at + WINDOW_S - now)
                    break
            else:
                wait = max(wait, window[-1].at + WINDOW_S - now)
        return wait

    def _settle(self, entry: _Entry, actual_tokens: int) -> None:
        actual = max(0, actual_tokens)
        if not entry.expired:
            self._window_tokens += actual - entry.tokens
        entry.tokens = actual
