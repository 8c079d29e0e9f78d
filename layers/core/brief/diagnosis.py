"""What a job says while its model keeps failing, and why it failed when it gives up.

A model call that fails in a way that may pass (429, 5xx, a timeout) is retried in the
container and then by the queue; without a word, a throttled job would look stuck for
minutes and then fail with "the step failed repeatedly". So a stage listens to its model's
retries (`RetryWatch`): each becomes a `model_retry` event — at most one per source every
few seconds, so a storm of retries costs a few writes — which the job's status shows as the
source's current wait. A delivery that gives up keeps what went wrong
(`keys.errors`), and when the queue gives up too, the dead-letter stage
reads those (`given_up_cause`) to name the cause: "the model openai:gpt-4o-mini answered
429 Too Many Requests 24 times in 5 minutes". A delivery that fails another way (S3 or SQS
past the SDK's retries, a message naming a source that is not there, a bug) keeps its error
the same way (`keep_failure`). Nothing here runs on a call that succeeds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus

from brief.errors import BriefError, JobNotFound, RetryableError
from brief.jobstore import JobStore
from brief.models import FailingStep, ModelRetry, StepError

log = logging.getLogger(__name__)

RETRY_EVENT_EVERY_S = 5.0
"""At most one `model_retry` event per source (or combine) this often."""
KEPT = "brief_kept"
"""Set on an error `RetryWatch.keep` stored, so `keep_failure` further up does not again."""

# Statuses model APIs send that the HTTP registry does not name.
_PHRASES = {529: "Overloaded"}


def failure_kind(retry: ModelRetry) -> str:
    """What the model did, as the rest of a sentence that starts with its name:
    "answered 429 Too Many Requests", "did not answer in time (ReadTimeout)"."""
    if retry.status is not None:
        return f"answered {retry.status} {status_phrase(retry.status)}".rstrip()
    rest = retry.error.removeprefix(retry.name)
    if rest == retry.error:  # not an adapter's message (those start with the model's name)
        return f"failed: {retry.error}"
    rest = rest.strip()
    return f"failed: {rest[1:].strip()}" if rest.startswith(":") else rest


def status_phrase(status: int) -> str:
    """The status's reason phrase ("Too Many Requests" for 429); "" for one nobody named."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _PHRASES.get(status, "")


def wait_detail(retry: ModelRetry) -> str:
    """The wait as a person reads it: "openai:gpt-4o-mini answered 429 Too Many Requests
    (attempt 4); retrying in 20 s"."""
    wait = retry.retry_in_s
    then = "retrying later" if wait is None else f"retrying in {_wait(wait)}"
    return f"{retry.name} {failure_kind(retry)} (attempt {retry.attempt}); {then}"


@dataclass
class RetryWatch:
    """Hears one delivery's retryable model failures (an `OnModelRetry`): makes them events,
    and `keep`s their tally when the delivery gives up.

    Events are at most one per `every_s`, plus the one that says the delivery gave up (the
    source then waits for the queue, not for a retry in the container).

    `index` is the source's (None: the combine's). A write that fails is logged and
    forgotten: it only loses an explanation, and failing the delivery for it would cost the
    model call it was retrying.
    """

    store: JobStore
    job_id: str
    step: FailingStep
    index: int | None
    clock: Callable[[], datetime]
    every_s: float = RETRY_EVENT_EVERY_S
    _answers: Counter[str] = field(default_factory=Counter)
    _model: str | None = None
    _first_at: datetime | None = None
    _last_event_at: datetime | None = None

    async def __call__(self, retry: ModelRetry) -> None:
        """Count the failure; write it as an event unless one was written just now."""
        now = self.clock()
        self._first_at = self._first_at or now
        self._answers[failure_kind(retry)] += 1
        self._model = retry.name
        last = self._last_event_at
        giving_up = retry.retry_in_s is None  # the delivery ends: the wait is the queue's now
        if not giving_up and last is not None and (now - last).total_seconds() < self.every_s:
            return
        self._last_event_at = now
        detail = wait_detail(retry)
        log.warning("waiting for the model: %s", detail)
        try:
            await self.store.event(
                self.job_id, "model_retry", now, index=self.index, detail=detail, retry=retry
            )
        except RetryableError as exc:
            log.warning("could not write a model_retry event", extra={"error": str(exc)})

    async def keep(self, error: Exception) -> None:
        """Store why this delivery failed, for the dead-letter stage to read if it is the
        last: the failures heard, or `error` itself when the model said nothing."""
        setattr(error, KEPT, True)
        now = self.clock()
        said = str(error) if isinstance(error, BriefError) else f"{type(error).__name__}: {error}"
        answers = self._answers or Counter({f"failed: {said}": 1})
        record = StepError(
            job_id=self.job_id,
            step=self.step,
            index=self.index,
            model=self._model,
            answers=dict(answers),
            error=said[:1000],
            first_at=self._first_at or now,
            at=now,
        )
        try:
            await self.store.put_step_error(record)
        except RetryableError as exc:
            log.warning("could not keep why the step failed", extra={"error": str(exc)})


async def keep_failure(
    store: JobStore,
    job_id: str,
    step: FailingStep,
    index: int | None,
    error: Exception,
    clock: Callable[[], datetime],
) -> None:
    """Keep why a delivery failed when no model watch did: S3 or SQS still failing after
    the SDK's retries, a message that names what is not there, a bug. Without it, a step its
    queue gave up on could only say that it "failed repeatedly"."""
    if getattr(error, KEPT, False) or isinstance(error, JobNotFound):
        return  # kept already; or no such job, to keep it under
    try:
        await RetryWatch(store, job_id, step, index, clock).keep(error)
    except Exception:  # never in place of the delivery's own error
        log.exception("could not keep why the step failed")


async def given_up_cause(
    store: JobStore, job_id: str, step: FailingStep, index: int | None
) -> str | None:
    """What kept failing in a step its queue gave up on, from the errors its deliveries kept
    ("the model openai:gpt-4o-mini answered 500 Internal Server Error 6 times in 4
    minutes"); None when none was kept."""
    errors = await store.step_errors(job_id, step, index)
    if not errors:
        return None
    answers: Counter[str] = Counter()
    for error in errors:
        answers.update(error.answers)
    (kind, count), *others = answers.most_common()
    model = next((e.model for e in reversed(errors) if e.model), None)
    cause = f"the model {model} {kind}" if model else kind.removeprefix("failed: ")
    cause += " once" if count == 1 else f" {count} times"
    span_s = (errors[-1].at - errors[0].first_at).total_seconds()
    if span_s >= 1:
        cause += f" in {duration(span_s)}"
    if others:
        rest = sum(n for _, n in others)
        cause += f" (and {rest} other failure{'s' if rest != 1 else ''})"
    return cause


def duration(seconds: float) -> str:
    """A span in the unit a person would use: "41 minutes", "1 hour"."""
    if seconds < 120:
        n, unit = int(seconds), "second"
    elif seconds < 2 * 3600:
        n, unit = int(seconds // 60), "minute"
    else:
        n, unit = int(seconds // 3600), "hour"
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _wait(seconds: float) -> str:
    if seconds < 10:
        return f"{max(seconds, 0.1):.1f} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    return f"{round(seconds / 60)} min"
