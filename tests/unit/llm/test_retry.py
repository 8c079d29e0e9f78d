"""Retries: bounded, jittered, never sooner than Retry-After, and the last error re-raised."""

from __future__ import annotations

import contextlib

import pytest

from brief.errors import PermanentError, RetryableError
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.retry import backoff_delay, call_with_retries


class Flaky:
    """Fails with the given errors, in order, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_transient_failures_are_retried_until_the_call_succeeds() -> None:
    fn, sleep = Flaky(ModelRetryable("500"), ModelRetryable("503")), Sleeps()
    assert await call_with_retries(fn, attempts=3, sleep=sleep, random=lambda: 0.5) == "ok"
    assert fn.calls == 3
    assert sleep.delays == [0.25, 0.5]  # half of 0.5 s, then half of 1 s


@pytest.mark.parametrize(("jitter", "expected"), [(0.0, 7.0), (1.0, 7.7)])
async def test_retry_after_is_the_wait_with_at_most_a_tenth_of_jitter(
    jitter: float, expected: float
) -> None:
    fn, sleep = Flaky(ModelRetryable("429", retry_after=7.0, throttled=True)), Sleeps()
    await call_with_retries(
        fn, attempts=2, base_s=0.5, cap_s=60.0, sleep=sleep, random=lambda: jitter
    )
    assert sleep.delays == [pytest.approx(expected)]


async def test_a_retry_after_replaces_the_backoff_instead_of_adding_to_it() -> None:
    throttles = [ModelRetryable("429", retry_after=1.0, throttled=True) for _ in range(5)]
    fn, sleep = Flaky(*throttles), Sleeps()
    await call_with_retries(fn, attempts=6, base_s=1.0, cap_s=20.0, sleep=sleep, random=lambda: 0.0)
    assert sleep.delays == [1.0] * 5  # not 1, 2, 4, 8, 16 s


async def test_throttles_within_the_budget_use_up_no_attempt() -> None:
    throttles = [ModelRetryable("429", retry_after=1.0, throttled=True) for _ in range(9)]
    fn, sleep = Flaky(*throttles), Sleeps()
    answer = await call_with_retries(
        fn, attempts=2, throttle_budget_s=30.0, sleep=sleep, random=lambda: 0.0
    )
    assert answer == "ok"
    assert fn.calls == 10  # far more than 2: the provider kept asking for one more second


async def test_throttles_past_the_budget_go_back_to_the_queue() -> None:
    throttles = [ModelRetryable("429", retry_after=1.0, throttled=True) for _ in range(20)]
    fn, sleep = Flaky(*throttles), Sleeps()
    with pytest.raises(ModelRetryable):
        await call_with_retries(
            fn, attempts=2, throttle_budget_s=5.0, sleep=sleep, random=lambda: 0.0
        )
    assert sum(sleep.delays) == 6.0  # five within the budget, then the one attempt
    assert fn.calls == 7


async def test_server_errors_use_up_attempts_whatever_the_budget() -> None:
    errors = [ModelRetryable(f"500 #{i}", status=500) for i in range(10)]
    fn, sleep = Flaky(*errors), Sleeps()
    with pytest.raises(ModelRetryable):
        await call_with_retries(fn, attempts=3, throttle_budget_s=600.0, sleep=sleep)
    assert fn.calls == 3


async def test_attempts_are_bounded_and_the_last_error_is_raised_as_retryable() -> None:
    errors = [ModelRetryable(f"429 #{i}") for i in range(10)]
    fn, sleep = Flaky(*errors), Sleeps()
    with pytest.raises(RetryableError) as raised:
        await call_with_retries(fn, attempts=4, sleep=sleep)
    assert fn.calls == 4
    assert len(sleep.delays) == 3
    assert raised.value is errors[3]  # the SQS record fails with the real cause


async def test_a_permanent_error_is_not_retried() -> None:
    fn, sleep = Flaky(ModelRejected("context length exceeded")), Sleeps()
    with pytest.raises(PermanentError):
        await call_with_retries(fn, attempts=5, sleep=sleep)
    assert fn.calls == 1
    assert sleep.delays == []


async def test_a_wait_longer_than_the_function_can_afford_goes_back_to_the_queue() -> None:
    fn, sleep = Flaky(ModelRetryable("429", retry_after=3600.0)), Sleeps()
    with pytest.raises(ModelRetryable):
        await call_with_retries(fn, attempts=5, max_wait_s=60.0, sleep=sleep)
    assert fn.calls == 1
    assert sleep.delays == []


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter() -> None:
    ceilings = [backoff_delay(n, base_s=1.0, cap_s=10.0, random=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(3, base_s=1.0, cap_s=10.0, random=lambda: 0.0) == 0.0


async def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await call_with_retries(Flaky(), attempts=0)


@pytest.mark.parametrize(
    ("errors", "heard"),
    [
        # Retried, then answered: the failure with the wait before its retry.
        ([ModelRetryable("503")], [("503", 1, 0.25)]),
        # Every attempt used up: the last failure is heard too, with no retry to come.
        ([ModelRetryable("500")] * 2, [("500", 1, 0.25), ("500", 2, None)]),
        # A wait the function cannot afford: heard, and given back to the queue.
        ([ModelRetryable("429", retry_after=3600.0, throttled=True)], [("429", 1, None)]),
    ],
)
async def test_every_retryable_failure_is_heard_with_its_number_and_wait(
    errors: list[Exception], heard: list[tuple[str, int, float | None]]
) -> None:
    told: list[tuple[str, int, float | None]] = []

    async def on_failure(exc: RetryableError, number: int, retry_in_s: float | None) -> None:
        told.append((str(exc), number, retry_in_s))

    fn, sleep = Flaky(*errors), Sleeps()
    with contextlib.suppress(RetryableError):  # the cases that give up raise the last error
        await call_with_retries(
            fn, attempts=2, max_wait_s=60.0, sleep=sleep, random=lambda: 0.5, on_failure=on_failure
        )
    assert told == heard
