"""The sweeper: a job that makes no progress past its deadline is failed, with the reason;
before that, a fan-in that never sent its combine is sent.

Retries and the dead-letter queues cover every message that fails; the sweeper covers the
jobs no message speaks for any more: a research message that was never sent after its job
was stored, a delivery lost on the way, a fan-in whose combine never went out. The last is
the one it can finish rather than fail: every summary is stored, so once the job has been
idle for the claim's timeout it sends the combine itself (`brief.pipeline.resume_fan_in`).
It runs on a schedule and reads the open-jobs index (`keys.open_job`: written when a job is
created, dropped here once the job has ended), then lists only the jobs old enough to have
stalled, so a sweep costs what is in flight, never the bucket's history. Progress is the
time of a job's latest event (`keys.event` names carry it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from brief import metrics
from brief.concurrency import each_bounded
from brief.diagnosis import duration
from brief.errors import RetryableError
from brief.jobstore import BatchPlace, JobStore, OpenJob, Progress, ledger_state
from brief.logs import bind_job
from brief.models import TERMINAL_STATES, FailedStage, JobState, source_number, utcnow

# The pipeline's own failure path: the same record, metric and `job_failed` event.
from brief.pipeline import fail_job, resume_fan_in
from brief.ports import TaskQueue

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Outcome = Literal["progressing", "resumed", "failed", "closed", "error"]

# The stage a job was waiting on, by the state it stalled in.
_STAGE_OF: dict[JobState, FailedStage] = {
    "queued": "research",
    "retrieving": "research",
    "summarizing": "summarize",
    "combining": "combine",
}


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did (the handler returns it; the logs and tests read it)."""

    open: int
    """Entries in the open-jobs index."""
    checked: int
    """Entries old enough to have stalled, so looked at."""
    failed: list[str] = field(default_factory=list)
    """Jobs this sweep marked failed."""
    resumed: list[str] = field(default_factory=list)
    """Jobs whose combine this sweep sent: their fan-in never had."""
    closed: int = 0
    """Entries dropped: their job had ended (or never came to exist)."""
    errors: int = 0
    """Jobs that could not be checked this time (storage trouble); the next sweep retries."""

    def as_dict(self) -> dict[str, object]:
        """The report as the handler's JSON response."""
        return {
            "open": self.open,
            "checked": self.checked,
            "failed": list(self.failed),
            "resumed": list(self.resumed),
            "closed": self.closed,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Sweeper:
    """Fails every open job whose latest event is older than `stall_timeout_s`, and sends
    the combine of one idle for `claim_timeout_s` whose fan-in never did (given a `queue`).

    Safe to run twice at once: the failure is a conditional write (the first reason wins and
    only its writer adds the `job_failed` event), the fan-in's claim is conditional too, and
    dropping an index entry twice is a no-op.
    """

    store: JobStore
    stall_timeout_s: float = 2400.0
    concurrency: int = 16
    clock: Clock = utcnow
    queue: TaskQueue | None = None
    claim_timeout_s: float = 360.0

    async def sweep(self) -> SweepReport:
        """Check every open job that could have stalled; resume a fan-in that never sent its
        combine, fail the stalled, drop the ended."""
        now = self.clock()
        entries = await self.store.open_jobs()
        # A job younger than the timeouts cannot have stalled: no listing for it.
        soonest = self.stall_timeout_s
        if self.queue is not None:
            soonest = min(soonest, self.claim_timeout_s)
        due = [e for e in entries if (now - e.created_at).total_seconds() >= soonest]
        outcomes = await each_bounded(due, lambda e: self._check(e, now), self.concurrency)
        failed = [e.job_id for e, o in zip(due, outcomes, strict=True) if o == "failed"]
        if failed:
            metrics.count("JobsStalled", len(failed))
        return SweepReport(
            open=len(entries),
            checked=len(due),
            failed=failed,
            resumed=[e.job_id for e, o in zip(due, outcomes, strict=True) if o == "resumed"],
            closed=outcomes.count("closed") + len(failed),
            errors=outcomes.count("error"),
        )

    async def _check(self, entry: OpenJob, now: datetime) -> Outcome:
        bind_job(entry.job_id)
        try:
            progress = await self.store.progress(entry.job_id)
            if not progress.exists:
                # Never stored (a crash between the entry and the request, or the job's
                # objects expired): nothing to watch any more.
                await self.store.close_open(entry)
                return "closed"
            if progress.state in TERMINAL_STATES:
                # Ended. Its batch's ledger is noted again first: a delivery that ended the
                # job and crashed before its note is never redelivered once it acked.
                place = BatchPlace.of(await self.store.job(entry.job_id))
                await self.store.note_batch_job(place, ledger_state(progress.state))
                await self.store.close_open(entry)
                return "closed"
            last = progress.last_at or entry.created_at
            idle_s = (now - last).total_seconds()
            if idle_s < self.stall_timeout_s:
                if (
                    self.queue is not None
                    and idle_s >= self.claim_timeout_s
                    and progress.state in ("summarizing", "combining")
                    and await resume_fan_in(
                        self.store,
                        self.queue,
                        entry.job_id,
                        progress.names,
                        now,
                        self.claim_timeout_s,
                    )
                ):
                    return "resumed"
                return "progressing"
            reason = stalled_reason(idle_s, progress)
            place = BatchPlace.of(await self.store.job(entry.job_id))
            stage = _STAGE_OF[progress.state]
            await fail_job(self.store, entry.job_id, stage, reason, now, place)
            await self.store.close_open(entry)
        except RetryableError as exc:
            log.warning("could not check an open job", extra={"error": str(exc)})
            return "error"
        log.warning("stalled job failed", extra={"state": progress.state, "idle_s": idle_s})
        return "failed"


def stalled_reason(idle_s: float, progress: Progress) -> str:
    """Why a stalled job failed, for its owner: how long it waited and where it stopped."""
    step = progress.last_kind or "job_created"
    if progress.last_index is not None:
        step += f" for source {source_number(progress.last_index)}"
    return f"no progress for {duration(idle_s)} (last step: {step}); the job was given up"
