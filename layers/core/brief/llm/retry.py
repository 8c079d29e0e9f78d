"""Retries for one model call: full-jitter exponential backoff that honours Retry-After.

Only `RetryableError`s are retried, at most `attempts` times in all; then the last one is
raised as it is, so the SQS record fails and the message comes back later (the queue's own,
longer backoff). A wait the provider asks for that is longer than `max_wait_s` is not slept
in a Lambda's limited time: the error is raised at once, for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from brief.errors import RetryableError

__all__ = ["backoff_delay", "call_with_retries"]

log = logging.getLogger(__name__)

T = TypeVar("T")


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
    together; a provider's Retry-After is a floor, not a suggestion.
    """
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    delay = random() * ceiling
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_s: float = 0.5,
    cap_s: float = 20.0,
    max_wait_s: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    random: Callable[[], float] = _random.random,
) -> T:
    """`await fn()`, retrying `RetryableError`s; at most `attempts` calls in all.

    The error's `retry_after` (when it has one, e.g. `ModelRetryable`) is honoured: the next
    call is never sooner. Permanent errors and anything else propagate at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    attempt = 1
    while True:
        try:
            return await fn()
        except RetryableError as exc:
            retry_after: float | None = getattr(exc, "retry_after", None)
            if attempt >= attempts:
                raise
            if retry_after is not None and retry_after > max_wait_s:
                log.warning(
                    "giving the retry back to the queue",
                    extra={"retry_after_s": retry_after, "attempt": attempt},
                )
                raise
            delay = backoff_delay(
                attempt, base_s=base_s, cap_s=cap_s, retry_after=retry_after, random=random
            )
            log.info(
                "retrying a model call",
                extra={"attempt": attempt, "delay_s": round(delay, 3), "error": str(exc)},
            )
            attempt += 1
            await sleep(delay)
