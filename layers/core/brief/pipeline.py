"""The stages of a research job: intake, research, summarize, combine, dead letter.

Each stage is idempotent under SQS's at-least-once delivery: outputs are written once by key,
a 412 means "already done, carry on", and a message is acknowledged only after its output is
durable. Each stage receives only the ports it uses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from brief import metrics
from brief.concurrency import both
from brief.errors import (
    InvalidMessage,
    JobFinished,
    JobNotFound,
    PermanentError,
    RetryableError,
)
from brief.ids import batch_job_id, new_batch_id, new_job_id
from brief.jobstore import JobStore, text_key
from brief.logs import bind_job
from brief.messages import CombineTask, ResearchTask, SubmitTask, SummarizeTask
from brief.models import (
    TERMINAL_STATES,
    BatchRecord,
    CachedText,
    Citation,
    EventKind,
    FailedStage,
    JobFailure,
    JobRecord,
    Report,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
    SourceRecord,
    SummaryRecord,
    Usage,
    utcnow,
)
from brief.ports import ModelText, SourceText, Summarizer, TaskQueue

if TYPE_CHECKING:
    from brief.sources import Gatherer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_CITATION = re.compile(r"\[(\d+)\]")
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Intake:
    """Accepts a request: stores it and queues its research. The API's one write path."""

    store: JobStore
    queue: TaskQueue
    clock: Clock = utcnow

    async def submit(self, request: ResearchRequest, owner: str) -> JobRecord:
        """Store the job, then queue it; the caller gets an id only once both are durable."""
        record = JobRecord(
            job_id=new_job_id(), owner=owner, created_at=self.clock(), request=request
        )
        await create_job(self.store, record)
        await self.queue.send("intake", [ResearchTask(job_id=record.job_id)])
        metrics.count("JobsStarted")
        return record

    async def submit_batch(self, requests: Sequence[ResearchRequest], owner: str) -> BatchRecord:
        """Store a batch and queue one submit message per job; the research function creates
        each job as its message arrives, so a batch of thousands is accepted in one call."""
        batch = BatchRecord(
            batch_id=new_batch_id(), owner=owner, created_at=self.clock(), size=len(requests)
        )
        await self.store.put_batch(batch, requests)
        tasks = [SubmitTask(batch_id=batch.batch_id, n=n) for n in range(len(requests))]
        await self.queue.send("intake", tasks)
        metrics.count("JobsStarted", len(tasks))
        return batch

    async def cancel(self, job_id: str, owner: str) -> None:
        """Stop a job: no further fetches or model calls; its state becomes `cancelled`."""
        view = await self.store.view(job_id, owner=owner)
        if view.state in TERMINAL_STATES and view.state != "cancelled":
            raise JobFinished(f"the job has already ended: it is {view.state}")
        at = self.clock()
        if await self.store.cancel(job_id, at):
            await self.store.event(job_id, "job_cancelled", at)


async def create_job(store: JobStore, record: JobRecord) -> bool:
    """Store a new job, list it under its owner, and say so in its events (once)."""
    created = await store.create(record)
    if created:
        await store.index_for_owner(record)
        await store.event(record.job_id, "job_created", record.created_at)
    return created


@dataclass(frozen=True)
class Research:
    """Retrieves every source of a job at once, stores each, and fans out the summaries."""

    store: JobStore
    queue: TaskQueue
    gatherer: Gatherer
    clock: Clock = utcnow

    async def run(self, task: ResearchTask | SubmitTask) -> None:
        """Retrieve (or resume retrieving) the job's sources, then queue one summary each."""
        if isinstance(task, SubmitTask):
            task = await self._create_from_batch(task)
        bind_job(task.job_id)
        job = await self.store.job(task.job_id)
        if await self.store.failure(job.job_id) is not None or await self.store.cancelled(
            job.job_id
        ):
            return
        retrieval = await self.store.retrieval(job.job_id)
        if retrieval is None:
            retrieval = await self._retrieve(job)
        usable = retrieval.usable
        if not usable:
            reasons = "; ".join(f"{s.url}: {s.reason}" for s in retrieval.sources)
            reason = f"no source could be used ({reasons})"
            await _fail(self.store, job.job_id, "research", reason, self.clock())
            return
        await self.queue.send(
            "summarize",
            [SummarizeTask(job_id=job.job_id, index=s.index, expected=len(usable)) for s in usable],
        )

    async def _create_from_batch(self, task: SubmitTask) -> ResearchTask:
        """Create job `n` of a batch (idempotently: its id derives from the batch's)."""
        batch = await self.store.batch(task.batch_id)
        request = await self.store.batch_request(task.batch_id, task.n)
        if request is None or task.n >= batch.size:
            raise InvalidMessage(f"batch {task.batch_id} has no job {task.n}")
        job_id = batch_job_id(task.batch_id, task.n)
        record = JobRecord(
            job_id=job_id,
            owner=batch.owner,
            created_at=self.clock(),
            request=request,
            batch_id=task.batch_id,
        )
        await create_job(self.store, record)
        return ResearchTask(job_id=job_id)

    async def _retrieve(self, job: JobRecord) -> Retrieval:
        started = self.clock()
        await self.store.event(job.job_id, "retrieval_started", started)
        records = {s.outcome.index: s for s in await self.store.sources(job.job_id)}

        async def store(record: SourceRecord) -> None:
            await self.store.put_source(record)
            outcome = record.outcome
            kind: EventKind = "source_fetched" if outcome.usable else "source_failed"
            detail = outcome.reason if not outcome.usable else outcome.state
            await self.store.event(
                job.job_id, kind, self.clock(), index=outcome.index, detail=detail
            )
            records[outcome.index] = record

        await self.gatherer.gather(
            job.job_id,
            job.request.sources,
            done=set(records),
            expansions=await self.store.expansions(job.job_id),
            on_expansion=self.store.put_expansion,
            on_record=store,
        )
        retrieval = Retrieval(
            job_id=job.job_id,
            sources=[records[i].outcome for i in sorted(records)],
            started_at=started,
            finished_at=self.clock(),
        )
        if not await self.store.put_retrieval(retrieval):
            retrieval = await self.store.retrieval(job.job_id) or retrieval
        ok = len(retrieval.usable)
        total = len(retrieval.sources)
        await self.store.event(
            job.job_id, "retrieval_done", self.clock(), detail=f"{ok} of {total} usable"
        )
        metrics.duration(
            "StageDuration", _ms(retrieval.started_at, retrieval.finished_at), stage="retrieval"
        )
        if total > ok:
            metrics.count("FetchFailures", total - ok)
        return retrieval


@dataclass(frozen=True)
class Summarize:
    """Summarizes one source, then tries the fan-in that starts the combine."""

    store: JobStore
    queue: TaskQueue
    summarizer: Summarizer
    claim_timeout_s: float = 120.0
    clock: Clock = utcnow

    async def run(self, task: SummarizeTask) -> None:
        """Write source `task.index`'s summary (once), then fan in."""
        bind_job(task.job_id)
        # Independent reads go together: each is a round trip to S3 (the warm overhead of a
        # message is mostly these).
        cancelled, existing = await both(
            self.store.cancelled(task.job_id), self.store.summary(task.job_id, task.index)
        )
        if cancelled:
            return
        if existing is None:
            job, source = await both(
                self.store.job(task.job_id), self.store.source(task.job_id, task.index)
            )
            if source is None or not source.outcome.usable:
                raise InvalidMessage(f"job {task.job_id} has no usable source {task.index}")
            summary = await self._summarize(job, source)
            if await self.store.put_summary(summary):
                metrics.duration(
                    "StageDuration", _ms(summary.started_at, summary.finished_at), stage="summarize"
                )
                metrics.record_usage(summary.usage)
                kind: EventKind = "summary_done" if summary.state == "ok" else "summary_failed"
                await self.store.event(
                    task.job_id, kind, summary.finished_at, index=task.index, detail=summary.reason
                )
        await self._fan_in(task)

    async def _summarize(self, job: JobRecord, source: SourceRecord) -> SummaryRecord:
        started = self.clock()
        model, question = self.summarizer.name, job.request.question
        key = text_key(model, "summarize", question, source.outcome.title or "", source.text)
        cached = await self.store.cached_text(key)
        if cached is not None:
            return SummaryRecord(
                job_id=job.job_id,
                index=source.outcome.index,
                state="ok",
                text=cached.text,
                model=model,
                cached=True,
                started_at=started,
                finished_at=self.clock(),
            )
        text, reason, usage = "", None, Usage()
        try:
            output = await self.summarizer.summarize(
                question,
                SourceText(
                    n=source.outcome.index + 1,
                    title=source.outcome.title,
                    url=source.outcome.url,
                    text=source.text,
                ),
            )
            text, usage = output.text, output.usage
            cache = CachedText(model=model, text=text, usage=usage, created_at=self.clock())
            await self.store.cache_text(key, cache)
        except PermanentError as exc:  # retryable errors propagate: SQS brings the message back
            reason = f"the model could not summarize this source: {exc}"
        return SummaryRecord(
            job_id=job.job_id,
            index=source.outcome.index,
            state="ok" if reason is None else "failed",
            text=text,
            reason=reason,
            model=self.summarizer.name,
            usage=usage,
            started_at=started,
            finished_at=self.clock(),
        )

    async def _fan_in(self, task: SummarizeTask) -> None:
        """Send the combine message once, however many summaries finish at the same moment.

        S3 is strongly consistent, so the delivery that writes the last summary sees them all;
        the conditional claim picks one sender. If that sender dies before sending, the claim
        names the source whose message it was: that message comes back (SQS redelivers it),
        waits until the claim is older than any live delivery could be, and sends.
        """
        if len(await self.store.summary_indexes(task.job_id)) < task.expected:
            return
        now = self.clock()
        won, claim = await self.store.claim_combine(task.job_id, task.index, now)
        if not won:
            if claim.owner != task.index or await self.store.combine_sent(task.job_id):
                return
            if (now - claim.at).total_seconds() < self.claim_timeout_s:
                raise RetryableError("the combine claim is held by a delivery still in flight")
        await self.queue.send("combine", [CombineTask(job_id=task.job_id)])
        await self.store.mark_combine_sent(task.job_id)


@dataclass(frozen=True)
class Combine:
    """Combines every summary of a job into one cited report."""

    store: JobStore
    summarizer: Summarizer
    clock: Clock = utcnow

    async def _combine(self, question: str, numbered: Sequence[SourceText]) -> ModelText:
        return await _cached_combine(self.store, self.summarizer, question, numbered, self.clock)

    async def run(self, task: CombineTask) -> Report | None:
        """Write the report (once); a job with nothing to combine fails with the reason."""
        bind_job(task.job_id)
        existing = await self.store.report(task.job_id)
        if existing is not None or await self.store.cancelled(task.job_id):
            return existing
        job = await self.store.job(task.job_id)
        retrieval = await self.store.retrieval(task.job_id)
        if retrieval is None:
            raise InvalidMessage(f"job {task.job_id} has not finished retrieval")
        started = self.clock()
        await self.store.event(task.job_id, "combine_started", started)
        summaries = await self.store.summaries(task.job_id, [s.index for s in retrieval.usable])
        by_index = {s.index: s for s in summaries if s.state == "ok"}
        cited = [s for s in retrieval.usable if s.index in by_index]
        if not cited:
            await _fail(
                self.store, job.job_id, "combine", "no source could be summarized", self.clock()
            )
            return None
        numbered = [
            SourceText(n=n, title=s.title, url=s.url, text=by_index[s.index].text)
            for n, s in enumerate(cited, start=1)
        ]
        combined = await self._combine(job.request.question, numbered)
        citations = [
            Citation(n=t.n, index=s.index, url=t.url, title=t.title)
            for t, s in zip(numbered, cited, strict=True)
        ]
        reasons = {s.index: s.reason for s in summaries if s.state == "failed"}
        missing = [
            s
            if s.state == "failed"
            else s.model_copy(
                update={"state": "failed", "reason": reasons.get(s.index, "no summary")}
            )
            for s in retrieval.sources
            if s.index not in by_index
        ]
        report = Report(
            job_id=job.job_id,
            question=job.request.question,
            markdown=render_markdown(job.request.question, combined.text, citations, missing),
            citations=citations,
            missing=missing,
            model=self.summarizer.name,
            usage=sum((s.usage for s in summaries), combined.usage),
            stage_usage={
                "summarize": sum((s.usage for s in summaries), Usage()),
                "combine": combined.usage,
            },
            created_at=self.clock(),
        )
        report = await self.store.put_report(report)
        await self.store.event(task.job_id, "report_ready", self.clock())
        metrics.count("JobsCompleted")
        metrics.record_usage(combined.usage)
        metrics.duration("StageDuration", _ms(started, self.clock()), stage="combine")
        return report


async def _cached_combine(
    store: JobStore,
    summarizer: Summarizer,
    question: str,
    numbered: Sequence[SourceText],
    at: Clock,
) -> ModelText:
    """The combined answer, from the cache when these exact summaries were combined before."""
    parts = [f"[{t.n}] {t.title or ''} {t.url}\n{t.text}" for t in numbered]
    key = text_key(summarizer.name, "combine", question, *parts)
    cached = await store.cached_text(key)
    if cached is not None:
        return ModelText(cached.text)
    combined = await summarizer.combine(question, numbered)
    entry = CachedText(
        model=summarizer.name, text=combined.text, usage=combined.usage, created_at=at()
    )
    await store.cache_text(key, entry)
    return combined


def render_markdown(
    question: str, body: str, citations: Sequence[Citation], missing: Sequence[SourceOutcome]
) -> str:
    """The report as a reader sees it; a citation to a source that was not retrieved is dropped."""
    valid = {c.n for c in citations}
    body = _CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", body)
    lines = [f"# {question}", "", body.strip(), "", "## Sources", ""]
    for c in citations:
        lines.append(f"{c.n}. [{c.title or c.url}]({c.url})")
    if missing:
        lines += ["", "## Sources not used", ""]
        lines += [f"- {s.url} — {s.reason or 'unknown reason'}" for s in missing]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DeadLetter:
    """Marks the job of a message that exhausted its retries as failed, with the reason."""

    store: JobStore
    clock: Clock = utcnow

    async def run(self, body: str, source_queue: str) -> str | None:
        """Fail the message's job if it names one; returns the job id it marked, if any."""
        try:
            payload = json.loads(body)
        except ValueError:
            log.warning("dead letter is not JSON", extra={"queue": source_queue})
            return None
        if not isinstance(payload, dict):
            payload = {}
        job_id = payload.get("job_id")
        batch_id, n = payload.get("batch_id"), payload.get("n")
        if isinstance(batch_id, str) and _ID.fullmatch(batch_id) and isinstance(n, int):
            # A batch's job whose creation kept failing: it may not exist yet, but its id is
            # known, and its failure is what the batch's status must show.
            job_id = batch_job_id(batch_id, n)
        elif not isinstance(job_id, str) or not _ID.fullmatch(job_id):
            log.warning("dead letter names no job", extra={"queue": source_queue})
            return None
        else:
            try:
                await self.store.job(job_id)
            except JobNotFound:
                log.warning("dead letter for unknown job", extra={"queue": source_queue})
                return None
        bind_job(job_id)
        if await self.store.report(job_id) is not None:
            return None
        kind = payload.get("kind", "unknown")
        where = f" for source {payload['index']}" if "index" in payload else ""
        reason = f"the {kind} step{where} failed repeatedly and was given up"
        await _fail(self.store, job_id, "deadletter", reason, self.clock())
        return job_id


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


async def _fail(
    store: JobStore, job_id: str, stage: FailedStage, reason: str, at: datetime
) -> None:
    failure = JobFailure(job_id=job_id, stage=stage, reason=reason, at=at)
    if await store.fail(failure):
        metrics.count("JobsFailed", stage=stage)
        await store.event(job_id, "job_failed", at, detail=reason)
