"""The dead-letter stage: keeps a message that exhausted its retries, and fails its job.

The dead-letter function consumes the DLQs. A body is read as the Brief message it should be
(`brief.messages`); one that is not (a poison message) is still kept, and its job is still
failed when the body names one, so the owner learns why their job stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from brief.concurrency import each_bounded
from brief.diagnosis import given_up_cause
from brief.errors import InvalidMessage, JobNotFound
from brief.ids import batch_job_id, is_id
from brief.jobstore import BatchPlace, JobStore
from brief.logs import bind_job
from brief.messages import (
    QUEUE_ROLES,
    AnyTask,
    CombineTask,
    ExpandTask,
    SubmitTask,
    SummarizeTask,
    check_queue,
    parse_message,
    queue_of,
)
from brief.models import MAX_DEAD_BODY_CHARS, DeadMessage, DeadQueue, source_number, utcnow
from brief.pipeline import Clock, fail_job

log = logging.getLogger(__name__)

UNSAID = (
    "no delivery recorded an error: each ended before it could (a timeout, or the function "
    "crashed) or could not store it; the function's log lines with this job_id say which"
)
"""The rest of a summarize or combine step's dead-letter reason when none of its deliveries
kept an error."""


@dataclass(frozen=True)
class DeadLetter:
    """Keeps a message that exhausted its retries, and marks the job it names failed.

    The message is first kept in S3 (`keys.dead`, with why it died): an operator reads it
    there and redrives it after a fix (`brief dlq`). Only then is its job marked failed,
    unless it has its report, or the message was a source's whose summary is stored (its
    fan-in is the sweeper's to finish).
    """

    store: JobStore
    clock: Clock = utcnow

    async def run(
        self,
        body: str,
        source_queue: str,
        *,
        message_id: str | None = None,
        receive_count: int | None = None,
        sent_at: datetime | None = None,
    ) -> str | None:
        """Keep the message, then fail its job if it names one; the job id it marked."""
        letter = _Letter.read(body)
        queue = _dead_queue(source_queue, letter)
        job_id, reason, index, place = await self._diagnose(letter, queue)
        await self.store.put_dead_message(
            DeadMessage(
                message_id=message_id or _body_id(source_queue, body),
                queue=queue,
                dead_letter_queue=source_queue,
                body=body[:MAX_DEAD_BODY_CHARS],
                body_chars=len(body),
                receive_count=receive_count,
                sent_at=sent_at,
                died_at=self.clock(),
                job_id=job_id,
                reason=reason,
            )
        )
        if isinstance(letter.task, ExpandTask):
            await self._fail_unborn(letter.task, reason)
            return None
        if job_id is None:
            log.warning("dead letter names no known job", extra={"queue": queue})
            return None
        bind_job(job_id, source=None if index is None else source_number(index))
        if await self.store.report(job_id) is not None:
            return None
        if (
            isinstance(letter.task, SummarizeTask)
            and letter.problem is None
            and await self.store.summary(job_id, letter.task.index) is not None
        ):
            # Its source is summarized: what kept failing was the fan-in after the summary,
            # which the sweeper finishes once the job is idle (`resume_fan_in`). Failing the
            # job here would throw away every summary, or fail a job whose combine, sent by
            # another delivery, is about to write its report.
            log.warning("a summarized source's message died: its job is left to the fan-in")
            return None
        await fail_job(self.store, job_id, "deadletter", reason, self.clock(), place)
        return job_id

    async def _fail_unborn(self, task: ExpandTask, reason: str) -> None:
        """A chunk of a batch whose jobs were never all queued: fail each job of it that
        does not exist, so the batch's status ends."""

        async def fail(n: int) -> None:
            job_id = batch_job_id(task.batch_id, n)
            try:
                await self.store.job(job_id)
            except JobNotFound:
                place = BatchPlace(task.batch_id, n)
                await fail_job(self.store, job_id, "deadletter", reason, self.clock(), place)

        await each_bounded(range(task.first, task.first + task.count), fail, 16)

    async def _diagnose(
        self, letter: _Letter, queue: DeadQueue
    ) -> tuple[str | None, str, int | None, BatchPlace | None]:
        """The job the message names (None if none, or it does not exist), why it died, the
        index of the source it was about (None if none), and the job's place in its batch."""
        if isinstance(letter.task, ExpandTask):
            chunk = letter.task
            jobs = f"jobs {chunk.first + 1} to {chunk.first + chunk.count}"
            why = f"queuing {jobs} of batch {chunk.batch_id} failed repeatedly and was given up"
            return None, why, None, None
        if letter.unnamed is not None:
            return None, f"the {queue} queue got {letter.unnamed}", None, None
        job_id, index, place = letter.job_id, letter.index, letter.place
        assert job_id is not None  # a letter that names no job says why (`unnamed`)
        if place is None:  # a batch's job may not exist yet; any other must
            try:
                place = BatchPlace.of(await self.store.job(job_id))
            except JobNotFound:
                reason = f"the {queue} queue got a message for job {job_id}, which is unknown"
                return None, reason, index, None
        task = letter.task
        problem = letter.problem
        if task is not None and queue != "unknown":
            try:
                check_queue(task, queue)  # as its queue's consumer would have parsed it
            except InvalidMessage as exc:
                problem = exc
        if problem is not None or task is None:
            return job_id, f"a message on the {queue} queue was given up: {problem}", index, place
        number = "" if index is None else f" for source {source_number(index)}"
        step = f"the {task.kind} step{number}"
        # What kept failing, as the step's deliveries kept it; else only that it failed, and
        # what ends a delivery before it can say why.
        given_up = f"{step} failed repeatedly and was given up"
        if isinstance(task, SummarizeTask | CombineTask):
            cause = await given_up_cause(self.store, job_id, task.kind, index)
            if cause is not None:
                return job_id, f"{cause}; {step} was given up", index, place
            given_up += f"; {UNSAID}"
        return job_id, given_up, index, place


@dataclass(frozen=True)
class _Letter:
    """What a dead body says: the message it is, or (a poison body) why it is none and what
    it still names."""

    task: AnyTask | None = None
    problem: InvalidMessage | None = None  # why the body is not a Brief message
    unnamed: str | None = None  # why it names no job (then no job is failed)
    job_id: str | None = None
    index: int | None = None
    kind: str | None = None
    place: BatchPlace | None = None  # a batch's job: its id derives from the batch's, and it
    # may not exist yet

    @classmethod
    def read(cls, body: str) -> _Letter:
        if not body.strip():
            return cls(unnamed="an empty body")
        try:
            task = parse_message(body)
        except InvalidMessage as exc:
            return cls._poison(body, exc)
        index = task.index if isinstance(task, SummarizeTask) else None
        if isinstance(task, SubmitTask):
            job_id, place = batch_job_id(task.batch_id, task.n), BatchPlace(task.batch_id, task.n)
            return cls(task=task, job_id=job_id, kind=task.kind, place=place)
        if isinstance(task, ExpandTask):
            return cls(task=task, kind=task.kind)
        return cls(task=task, job_id=task.job_id, index=index, kind=task.kind)

    @classmethod
    def _poison(cls, body: str, problem: InvalidMessage) -> _Letter:
        """What a body that is not a valid message still names, read leniently: its job is
        failed with the reason, so its owner is not left waiting."""
        try:
            payload = json.loads(body)
        except ValueError:
            return cls(problem=problem, unnamed="a body that is not JSON")
        if not isinstance(payload, dict):
            return cls(problem=problem, unnamed="a body that is not a Brief message")
        index = payload.get("index")
        index = index if isinstance(index, int) else None
        kind = payload.get("kind")
        kind = kind if isinstance(kind, str) else None
        batch_id, n, job_id = payload.get("batch_id"), payload.get("n"), payload.get("job_id")
        if is_id(batch_id) and isinstance(n, int):
            # A batch's job whose creation kept failing: it may not exist yet, but its id is
            # known, and its failure is what the batch's status must show.
            job_id, place = batch_job_id(batch_id, n), BatchPlace(batch_id, n)
            return cls(problem=problem, job_id=job_id, index=index, kind=kind, place=place)
        if not is_id(job_id):
            return cls(problem=problem, unnamed="a message that names no job")
        return cls(problem=problem, job_id=job_id, index=index, kind=kind)


def _dead_queue(source_arn: str, letter: _Letter) -> DeadQueue:
    """The work queue a dead message came from: named in its DLQ's name (the template's
    logical ids, kept in both local and CloudFormation names), else by its kind."""
    name = source_arn.rsplit(":", 1)[-1].lower()
    for queue in QUEUE_ROLES:
        if queue in name:
            return queue
    return (queue_of(letter.kind) if letter.kind else None) or "unknown"


def _body_id(source_queue: str, body: str) -> str:
    """A stable id for a record that came without one (a hand-made event)."""
    return hashlib.sha256(f"{source_queue}\x00{body}".encode()).hexdigest()[:32]
