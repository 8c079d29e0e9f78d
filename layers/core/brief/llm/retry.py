"""Retries for one model call: full-jitter exponential backoff that honours Retry-After.

Only `RetryableError`s are retried, at most `attempts` times in all; then the last one is
raised as it is, so the SQS record fails and the message comes back later (the queue's own,
longer backoff). Throttles are the exception: a provider that answers 429 is healthy and says
when to come back, and going back to the queue costs far more than the wait it asked for, so
throttled calls are retried beyond `attempts` while their waits fit in `throttle_budget_s`.
A wait the provider asks for that is longer than `max_wait_s` is not slept in a Lambda's
limited time: the error is raised at once, for the same reason.

`on_failure` hears of every retryable failure, the last one too, so a job can show what it
is waiting for; it runs beside the wait, which it therefore does not lengthen.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from brief.concurrency import both
from brief.errors import RetryableError

__all__ = ["OnFailure", "backoff_delay", "call_with_retries"]

log = logging.getLogger(__name__)

T = TypeVar("T")

OnFailure = Callable[[RetryableError, int, float | None], Awaitable[None]]
"""Told of (the error, the failed call's number from 1, seconds until the next call or None
when the error is raised instead)."""


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after: float | None = None,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Full jitter (uniform in [0, min(cap, base * 2^(attempt-1))]) spreads callers that failed
    together. A provider's Retry-After replaces the backoff: it knows when it will serve again,
    and growing the wait past it only idles callers it is ready for (measured in the 429 storm
    of `make bench`). Up to a tenth more spreads callers that were throttled together.
    """
    if retry_after is not None:
        return retry_after * (1.0 + 0.1 * random())
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return random() * ceiling


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_s: float = 0.5,
    cap_s: float = 20.0,
    max_wait_s: float = 60.0,
    throttle_budget_s: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    random: Callable[[], float] = _random.random,
    on_failure: OnFailure | None = None,
) -> T:
    """`await fn()`, retrying `RetryableError`s; at most `attempts` failed calls count.

    The error's `retry_after` (when it has one, e.g. `ModelRetryable`) is honoured: the next
    call is never sooner. A throttled error (`throttled`) does not use up an attempt while the
    waits for throttles stay within `throttle_budget_s` in all. Permanent errors and anything
    else propagate at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    counted = 1  # calls that used up an attempt (the one in flight included)
    retries = 0
    throttle_waited = 0.0
    while True:
        try:
            return await fn()
        except RetryableError as exc:
            retry_after: float | None = getattr(exc, "retry_after", None)
            retries += 1
            if retry_after is not None and retry_after > max_wait_s:
                log.warning(
                    "giving the retry back to the queue",
                    extra={"retry_after_s": retry_after, "attempt": retries},
                )
                if on_failure is not None:
                    await on_failure(exc, retries, None)
                raise
            delay = backoff_delay(
                retries, base_s=base_s, cap_s=cap_s, retry_after=retry_after, random=random
            )
            if getattr(exc, "throttled", False) and throttle_waited + delay <= throttle_budget_s:
                throttle_waited += delay
            elif counted >= attempts:
                if on_failure is not None:
                    await on_failure(exc, retries, None)
                raise
            else:
                counted += 1
            log.info(
                "retrying a model call",
                extra={"attempt": retries, "delay_s": round(delay, 3), "error": str(exc)},
            )
            if on_failure is None:
                await sleep(delay)
            else:  # the listener first: it reads the time the wait begins
                await both(on_failure(exc, retries, delay), sleep(delay))
