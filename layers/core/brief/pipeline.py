"""The stages of a research job: intake, research, summarize, combine (the dead-letter
stage is `brief.deadletter`).

Each stage is idempotent under SQS's at-least-once delivery: outputs are written once by key,
a 412 means "already done, carry on", and a message is acknowledged only after its output is
durable. Each stage receives only the ports it uses.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel

from brief import deep as deep_research
from brief import keys, metrics
from brief.cancellation import CancelWatch, StoppedByCancel
from brief.concurrency import all_of, at_once, both, nothing, ready
from brief.diagnosis import RETRY_EVENT_EVERY_S, RetryWatch, keep_failure
from brief.drafts import DRAFT_EVERY_S, Draft
from brief.errors import (
    InvalidMessage,
    JobFinished,
    PermanentError,
    RetryableError,
)
from brief.eventbatch import EventBatch
from brief.extractive import by_source
from brief.ids import batch_job_id, new_batch_id, new_job_id
from brief.jobstore import CHUNK_SIZE, BatchPlace, JobStore, digest, text_key
from brief.llm.citations import check_citations, cited
from brief.logs import bind_job
from brief.messages import (
    INLINE_BYTES,
    CombineTask,
    ExpandTask,
    IntakeTask,
    ResearchTask,
    SubmitTask,
    SummarizeTask,
    inline_size,
)
from brief.models import (
    MAX_QUESTION_CHARS,
    TERMINAL_STATES,
    BatchRecord,
    CachedText,
    Citation,
    CombineClaim,
    EventKind,
    Expansion,
    FailedStage,
    JobFailure,
    JobRecord,
    LevelPlan,
    Report,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
    SourceRecord,
    SourceSpec,
    SummaryRecord,
    TreeNode,
    Usage,
    source_number,
    utcnow,
    within_limit,
)
from brief.ports import ModelText, OnModelRetry, SourceText, Summarizer, TaskQueue
from brief.siblings import Siblings
from brief.urls import same_page

if TYPE_CHECKING:
    from brief.sources import Gatherer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
M = TypeVar("M", bound=BaseModel)

LOST_EVENT_AFTER_S = 10.0
"""A report or a failure this old whose terminal event is not listed lost it to a crash; a
younger one's writer may still be at work, its event on the way."""


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
        """Store a batch (its requests in chunks) and queue one message per chunk; the
        research function turns each into a submit message per job and creates each job as
        its message arrives. 10,000 jobs are 100 writes and 10 sends, answered in one call."""
        batch = BatchRecord(
            batch_id=new_batch_id(),
            owner=owner,
            created_at=self.clock(),
            size=len(requests),
            chunk_size=CHUNK_SIZE,
        )
        await self.store.put_batch(batch, requests)
        chunks = [
            ExpandTask(
                batch_id=batch.batch_id, first=first, count=min(CHUNK_SIZE, batch.size - first)
            )
            for first in range(0, batch.size, CHUNK_SIZE)
        ]
        await self.queue.send("intake", chunks)
        metrics.count("JobsStarted", batch.size)
        return batch

    async def cancel(self, job_id: str, owner: str) -> None:
        """Stop a job: no further fetches or model calls; its state becomes `cancelled`.

        JobFinished if it has already ended: done, failed, or cancelled before (also by a
        concurrent cancel, whose marker was written first).
        """
        view, record = await both(
            self.store.view(job_id, owner=owner), self.store.job(job_id, owner=owner)
        )
        if view.state in TERMINAL_STATES:
            raise JobFinished(f"the job has already ended: it is {view.state}")
        at = self.clock()
        if not await self.store.cancel(job_id, at):
            raise JobFinished("the job has already ended: it is cancelled")
        await both(
            self.store.event(job_id, "job_cancelled", at),
            self.store.note_batch_job(BatchPlace.of(record), "cancelled"),
        )


async def create_job(store: JobStore, record: JobRecord) -> bool:
    """Store a new job, list it under its owner, and say so in its events (once)."""
    created = await store.create(record)
    if created:
        await both(
            store.index_for_owner(record),
            store.event(record.job_id, "job_created", record.created_at),
        )
    return created


@dataclass(frozen=True)
class _ResearchReads:
    """Research's first round of reads: the request, and the names of the job's objects
    (which say whether a redelivery has anything to resume from, without reading it)."""

    job: JobRecord
    names: set[str]
    plans: list[LevelPlan]  # a deep job's plans of its levels up to this one


@dataclass(frozen=True)
class Research:
    """Retrieves every source of a job at once, stores each, and fans out the summaries."""

    store: JobStore
    queue: TaskQueue
    gatherer: Gatherer
    clock: Clock = utcnow
    cancel_watch: CancelWatch = field(default_factory=CancelWatch)

    async def run(self, task: IntakeTask) -> None:
        """Retrieve (or resume retrieving) the job's sources, then queue one summary each."""
        if isinstance(task, ExpandTask):
            # A chunk of a batch: a submit message per job (a redelivery sends them again,
            # and each job is still created once: its id derives from the batch's).
            numbers = range(task.first, task.first + task.count)
            submits = [SubmitTask(batch_id=task.batch_id, n=n) for n in numbers]
            await self.queue.send("intake", submits)
            return
        try:
            await self._run(task)
        finally:
            # The page cache's writes run beside the job's; they end with the invocation.
            await self.gatherer.settle()

    async def _run(self, task: ResearchTask | SubmitTask) -> None:
        if isinstance(task, SubmitTask):
            task = await self._create_from_batch(task)
        bind_job(task.job_id)
        # One round of reads (each is a round trip to S3, on the job's critical path): what a
        # redelivery must resume from is listed in it too, though a first delivery finds none.
        level = task.level or 1
        reads = await at_once(
            _ResearchReads,
            job=self.store.job(task.job_id),
            names=self.store.names(task.job_id),
            plans=self.store.plans(task.job_id, range(2, level + 1)),
        )
        names = reads.names
        if keys.FAILED in names or keys.CANCELLED in names or keys.REPORT in names:
            return
        job, plans = reads.job, reads.plans
        if len(plans) < level - 1:
            raise InvalidMessage(f"job {task.job_id} has no plan for level {level}")
        deep = Level(job, plans, level)
        # A redelivery reads what an earlier delivery stored; a first one has nothing to read.
        stored = keys.level(level) + keys.RETRIEVAL in names
        retrieval = await self.store.retrieval(job.job_id, level) if stored else None
        records: dict[int, SourceRecord] = {}  # what this delivery has in hand, by index
        # The retrieval_done event, when this delivery retrieved: written beside the send.
        done: Awaitable[None] | None = None
        if retrieval is None:
            try:  # fetches in flight stop soon after a cancel, and nothing more is stored
                retrieved = await self.cancel_watch.run(
                    partial(self.store.cancelled, job.job_id),
                    self._resume_retrieval(deep, names),
                    shared=job.job_id,
                )
            except StoppedByCancel:
                log.info("job cancelled: retrieval stopped")
                return
            retrieval, records = retrieved
            ok, total = len(retrieval.usable), len(retrieval.sources)
            done = self.store.event(
                job.job_id,
                "retrieval_done",
                self.clock(),
                detail=f"{ok} of {total} usable{deep.of_level}",
            )
            metrics.duration(
                "StageDuration", _ms(retrieval.started_at, retrieval.finished_at), stage="retrieval"
            )
            if total > ok:
                metrics.count("FetchFailures", total - ok)
        usable = retrieval.usable
        if not usable and level > 1:
            # The follow-up searches found nothing to read: the report is written from the
            # levels before (the combine of this level says so).
            combine = CombineTask(job_id=job.job_id, indexes=(), level=_past_first(level))
            await both(done or nothing(), self.queue.send("combine", [combine]))
            return
        if not usable:
            if done is not None:
                await done
            reasons = "; ".join(f"{s.url}: {s.reason}" for s in retrieval.sources)
            reason = f"no source could be used ({reasons})"
            await fail_job(
                self.store, job.job_id, "research", reason, self.clock(), BatchPlace.of(job)
            )
            return
        questions = deep.questions()
        tasks = [
            SummarizeTask(
                job_id=job.job_id,
                index=s.index,
                expected=len(usable),
                input_digest=summary_input(questions[s.index], records[s.index])
                if s.index in records
                else None,
                question=questions[s.index],
                source=_inline(records.get(s.index)),
                level=_past_first(level),
                first=deep.first or None,
            )
            for s in usable
        ]
        await both(done or nothing(), self.queue.send("summarize", tasks))

    async def _create_from_batch(self, task: SubmitTask) -> ResearchTask:
        """Create job `n` of a batch and note it running in the batch's ledger (idempotently:
        its id derives from the batch's, and a redelivery notes it again)."""
        batch = await self.store.batch(task.batch_id)
        request = None if task.n >= batch.size else await self.store.batch_request(batch, task.n)
        if request is None:
            raise InvalidMessage(f"batch {task.batch_id} has no job {task.n}")
        job_id = batch_job_id(task.batch_id, task.n)
        record = JobRecord(
            job_id=job_id,
            owner=batch.owner,
            created_at=self.clock(),
            request=request,
            batch_id=task.batch_id,
            batch_n=task.n if batch.chunk_size is not None else None,
        )
        await create_job(self.store, record)
        await self.store.note_batch_job(BatchPlace.of(record), "running")
        return ResearchTask(job_id=job_id)

    async def _resume_retrieval(
        self, deep: Level, names: set[str]
    ) -> tuple[Retrieval, dict[int, SourceRecord]]:
        """Retrieve the level's sources an earlier delivery did not store (all, the first
        time)."""
        job_id = deep.job.job_id
        stored, expansions = await both(
            self.store.sources(job_id, names), self.store.expansions(job_id, names)
        )
        return await self._retrieve(deep, stored, expansions)

    async def _retrieve(
        self,
        deep: Level,
        stored: Sequence[SourceRecord],
        expansions: dict[int, Expansion],
    ) -> tuple[Retrieval, dict[int, SourceRecord]]:
        """Gather the level's sources not `stored` yet: the retrieval, and the records as
        stored, by index. A source another delivery stored first (a duplicate delivery,
        gathering at the same time) is that delivery's record, which may say otherwise (its
        fetch failed where this one's did not): the retrieval and the summarize messages
        follow what is stored."""
        job = deep.job
        started = self.clock()
        records = {s.outcome.index: s for s in stored}
        events = EventBatch(self.store, job.job_id, self.clock)
        # A page an earlier level read is not read again for a follow-up question.
        known = {
            same_page(u)
            for s in stored
            if s.outcome.index < deep.first
            for u in (s.outcome.url, s.outcome.final_url)
            if u
        }

        async def store(record: SourceRecord) -> None:
            if not await self.store.put_source(record):
                index = record.outcome.index
                record = await self.store.source(job.job_id, index) or record
            outcome = record.outcome
            kind: EventKind = "source_fetched" if outcome.usable else "source_failed"
            detail = outcome.reason if not outcome.usable else outcome.state
            events.add(kind, outcome.index, self.clock(), detail)
            records[outcome.index] = record

        try:
            await both(
                self.store.event(
                    job.job_id,
                    "retrieval_started",
                    started,
                    detail=deep.of_level.strip(" ()") or None,
                ),
                self.gatherer.gather(
                    job.job_id,
                    deep.sources,
                    done=set(records),
                    expansions=expansions,
                    on_expansion=self.store.put_expansion,
                    on_record=store,
                    known=known,
                ),
            )
        except BaseException:
            await events.close()
            raise
        found = [records[i].outcome for i in sorted(records) if i >= deep.first]
        outcomes = (
            within_limit(job.request.sources, found, job.request.max_sources)
            if deep.level == 1
            else found  # the plan kept the level within the documents left
        )
        retrieval = Retrieval(
            job_id=job.job_id,
            sources=outcomes,
            started_at=started,
            finished_at=self.clock(),
            level=deep.level,
        )
        # The sources' events go beside the retrieval, before the retrieval_done event.
        first, _ = await both(self.store.put_retrieval(retrieval), events.close())
        if not first:
            retrieval = await self.store.retrieval(job.job_id, deep.level) or retrieval
        return retrieval, records


@dataclass(frozen=True)
class Level:
    """One level of a job's research: the job's own sources (level 1), or a deep job's
    follow-up searches of a later level, whose sources are indexed after the levels before."""

    job: JobRecord
    plans: Sequence[LevelPlan]
    level: int = 1

    @property
    def sources(self) -> list[SourceSpec]:
        """Every source of the job up to this level, in index order (`deep.level_sources`)."""
        return deep_research.level_sources(self.job, self.plans)

    @property
    def first(self) -> int:
        """The index of this level's first source."""
        return deep_research.first_index(self.job, self.plans, self.level)

    @property
    def of_level(self) -> str:
        """ " (level 2)" in a deep job's later levels, else nothing."""
        return f" (level {self.level})" if self.level > 1 else ""

    def questions(self) -> dict[int, str]:
        """The question each of the level's source indexes is summarized for: in a later
        level, its follow-up question within the job's (a summary, and its cache entry,
        serves that job's topic); the job's, else."""
        question = self.job.request.question
        asked: dict[int, str] = {}
        for f, slots in deep_research.follow_up_slots(self.job, self.plans, self.level):
            within = f"{f.question} (researching: {question})"[:MAX_QUESTION_CHARS]
            asked.update(dict.fromkeys(slots, within))
        return defaultdict(lambda: question, asked)


@dataclass(frozen=True)
class _SummarizeReads:
    """Summarize's one round of reads; `hinted` is the cache entry under the key the message
    named (None when it named none), `question` the job's (read only when the message lacks
    it)."""

    cancelled: bool
    existing: SummaryRecord | None
    question: str
    source: SourceRecord | None
    hinted: CachedText | None


@dataclass(frozen=True)
class Summarize:
    """Summarizes one source, then tries the fan-in that starts the combine."""

    store: JobStore
    queue: TaskQueue
    summarizer: Summarizer
    claim_timeout_s: float = 120.0
    clock: Clock = utcnow
    cancel_watch: CancelWatch = field(default_factory=CancelWatch)
    retry_event_every_s: float = RETRY_EVENT_EVERY_S
    siblings: Siblings = field(default_factory=Siblings)

    def for_batch(self, tasks: Iterable[SummarizeTask]) -> Summarize:
        """This stage for one SQS batch: the records of a job in it are `Siblings`."""
        return replace(self, siblings=Siblings((t.job_id, t.index) for t in tasks))

    async def run(self, task: SummarizeTask, *, first: bool = False) -> None:
        """Write source `task.index`'s summary (once), then fan in. A `first` delivery (SQS's
        receive count 1) does not look for its summary before the model call: no earlier
        delivery wrote it, and the conditional write catches a rare duplicate."""
        bind_job(task.job_id, source=source_number(task.index))
        events = self.siblings.events(
            task.job_id, partial(EventBatch, self.store, task.job_id, self.clock)
        )
        try:
            written = await self._write(task, first)
        except BaseException as exc:
            if isinstance(exc, Exception):  # not the invocation's own end (cancelled)
                await keep_failure(
                    self.store, task.job_id, "summarize", task.index, exc, self.clock
                )
            if self.siblings.finished(task.job_id, task.index):  # its siblings' events
                self.siblings.written(task.job_id)
                await events.close()
            raise
        # Written, or cancelled: it no longer counts as running.
        last = self.siblings.finished(task.job_id, task.index)
        ours = self.siblings.written(task.job_id) if last else {}
        fan_in: Awaitable[None] | None = None
        if written is not None and written[0] is None:
            # Already there: a redelivery, which may own the claim, runs its own fan-in.
            fan_in = self._fan_in(task, {}, fresh=False)
        elif written is not None:
            summary = written[0]
            assert summary is not None
            kind: EventKind = "summary_done" if summary.state == "ok" else "summary_failed"
            events.add(kind, task.index, summary.finished_at, summary.reason)
            if last:  # the siblings' fan-in: their summaries are listed, or handed over
                fan_in = self._fan_in(task, ours, fresh=True)
        # The events and the fan-in both follow the writes, not each other.
        await both(events.close() if last else nothing(), fan_in or nothing())
        if written is not None:
            # The cache serves later jobs, not this one: written once the combine is on its way.
            await _keep(self.store, written[1])

    async def _write(
        self, task: SummarizeTask, first: bool
    ) -> tuple[SummaryRecord | None, tuple[str, CachedText] | None] | None:
        """Summarize and store: (the summary written, or None when one was already there;
        the cache entry to keep), or None when the job was cancelled."""
        # Every read this message may need goes at once — the cache entry too, when the
        # message names its input — and the writes that follow the model are only those the
        # fan-in needs: each is a round trip to S3 on the job's critical path. A summarizer
        # not worth caching (offline, milliseconds) does not read its summary first either:
        # summarizing again costs less than the read, and the conditional write says whether
        # it was there.
        caching = worth_caching(self.summarizer, "summarize")
        named = (
            summary_key(self.summarizer.name, task.input_digest)
            if task.input_digest and caching
            else None
        )
        reads = await at_once(
            _SummarizeReads,
            cancelled=self.siblings.cancelled(
                task.job_id, partial(self.store.cancelled, task.job_id)
            ),
            existing=self.store.summary(task.job_id, task.index)
            if caching and not first
            else nothing(),
            question=ready(task.question) if task.question else self._question(task.job_id),
            source=ready(task.source)
            if task.source
            else self.store.source(task.job_id, task.index),
            hinted=self.store.cached_text(named) if named else nothing(),
        )
        if reads.cancelled:
            return None
        if reads.existing is not None:
            return None, None
        source = reads.source
        if source is not None and (source.job_id, source.outcome.index) != (
            task.job_id,
            task.index,
        ):
            raise InvalidMessage(
                f"the message for source {source_number(task.index)} of job {task.job_id} "
                f"carries source {source_number(source.outcome.index)} of job {source.job_id}"
            )
        if source is None or not source.outcome.usable:
            raise InvalidMessage(
                f"job {task.job_id} has no usable source {source_number(task.index)}"
            )
        try:  # a model call in flight stops soon after a cancel; nothing is written
            summary, cache = await self.cancel_watch.run(
                partial(self.store.cancelled, task.job_id),
                self._summarize(task.job_id, reads.question, source, caching, named, reads.hinted),
                shared=task.job_id,
            )
        except StoppedByCancel:
            log.info("job cancelled: summary stopped")
            return None
        try:
            stored = await self.store.put_summary(summary)
        except Exception:
            await _keep(self.store, cache)  # the model's work outlives a failed write
            raise
        if not stored:
            return None, cache
        self.siblings.wrote(summary)
        metrics.duration(
            "StageDuration", _ms(summary.started_at, summary.finished_at), stage="summarize"
        )
        metrics.record_usage(summary.usage)
        return summary, cache

    async def _question(self, job_id: str) -> str:
        """The job's question, from its request (for a message that does not carry it)."""
        return (await self.store.job(job_id)).request.question

    async def _summarize(
        self,
        job_id: str,
        question: str,
        source: SourceRecord,
        caching: bool,
        named: str | None,
        hinted: CachedText | None,
    ) -> tuple[SummaryRecord, tuple[str, CachedText] | None]:
        """The summary, and the cache entry to write (None: nothing new to cache).

        `hinted` is the entry read under the key the message named (`named`); it is used
        only if that key is this source's own. Without `caching` (a summarizer not
        `worth_caching`) the cache is neither read nor written.
        """
        started = self.clock()
        model = self.summarizer.name
        key = summary_key(model, summary_input(question, source))
        cached = None
        if caching:
            cached = hinted if key == named else await self.store.cached_text(key)
        if cached is not None:
            hit = SummaryRecord(
                job_id=job_id,
                index=source.outcome.index,
                state="ok",
                text=cached.text,
                model=model,
                cached=True,
                started_at=started,
                finished_at=self.clock(),
            )
            return hit, None
        text, reason, usage = "", None, Usage()
        entry: tuple[str, CachedText] | None = None
        index = source.outcome.index
        watch = RetryWatch(
            self.store, job_id, "summarize", index, self.clock, self.retry_event_every_s
        )
        try:
            output = await self.summarizer.summarize(
                question,
                SourceText(
                    n=source_number(index),
                    title=source.outcome.title,
                    url=source.outcome.url,
                    text=source.text,
                ),
                on_retry=watch,
            )
            text, usage = output.text, output.usage
            if caching:
                entry = (
                    key,
                    CachedText(model=model, text=text, usage=usage, created_at=self.clock()),
                )
        except PermanentError as exc:
            reason = f"the model could not summarize this source: {exc}"
        except RetryableError as exc:  # SQS brings the message back; the error explains a DLQ
            await watch.keep(exc)
            raise
        summary = SummaryRecord(
            job_id=job_id,
            index=source.outcome.index,
            state="ok" if reason is None else "failed",
            text=text,
            reason=reason,
            model=self.summarizer.name,
            usage=usage,
            started_at=started,
            finished_at=self.clock(),
        )
        return summary, entry

    async def _fan_in(
        self, task: SummarizeTask, ours: dict[int, SummaryRecord], *, fresh: bool
    ) -> None:
        """Send the combine message once, however many summaries finish at the same moment.

        S3 is strongly consistent, so the delivery that writes the last summary sees them all;
        the conditional claim picks one sender. If that sender dies before sending, the claim
        names the source whose message it was: that message comes back (SQS redelivers it),
        waits until the claim is older than any live delivery could be, and sends.

        A `fresh` delivery (it wrote its summary just now) cannot be such a redelivery: no
        earlier delivery of its message got as far as the claim, which follows the summary's
        write. When it loses the claim, the claim is another's, and it need not be read.

        `ours` are the summaries this delivery's batch wrote: when they are all of them, no
        listing is needed, and those that fit ride along to the combine.
        """
        # A deep job's level counts its own summaries (indexes from `task.first`) and has a
        # claim of its own; the levels before it have all fanned in already.
        first = task.first or 0
        ours = {i: s for i, s in ours.items() if i >= first}
        level = task.level or 1
        if fresh and len(ours) >= task.expected:
            done = set(ours)
        else:
            listed = await self.store.summary_indexes(task.job_id)
            done = {i for i in listed if i >= first}
        if len(done) < task.expected:
            return
        now = self.clock()
        if fresh:
            claim = CombineClaim(job_id=task.job_id, owner=task.index, at=now, level=level)
            won = await self.store.try_claim_combine(claim)
            if not won:
                return
        else:
            won, claim = await self.store.claim_combine(task.job_id, task.index, now, level)
        if not won:
            if claim.owner != task.index or await self.store.combine_sent(task.job_id, level):
                return
            age_s = (now - claim.at).total_seconds()
            if age_s < self.claim_timeout_s:
                raise RetryableError(
                    "the combine claim is held by a delivery still in flight",
                    retry_after=self.claim_timeout_s - age_s,
                )
        await _send_combine(self.store, self.queue, task.job_id, done, level, ours)


@dataclass(frozen=True)
class _CombineReads:
    """Combine's one round of reads; `listed` are the summaries the fan-in saw."""

    existing: Report | None
    cancelled: bool
    job: JobRecord
    retrieval: Retrieval | None
    listed: list[SummaryRecord]


@dataclass(frozen=True)
class _Tree:
    """What a deep job's report covers: every level's sources and summaries, its questions,
    and what the reader must know about how the tree grew."""

    retrieval: Retrieval
    summaries: list[SummaryRecord]
    nodes: list[TreeNode]
    notes: list[str]
    asking: Usage  # what asking the follow-up questions of a model cost


@dataclass(frozen=True)
class Combine:
    """Combines every summary of a job into one cited report (a deep job's level: asks its
    next level's follow-up questions, until the last level's report covers them all)."""

    store: JobStore
    summarizer: Summarizer
    queue: TaskQueue | None = None  # a deep job's next level goes to the intake queue
    clock: Clock = utcnow
    cancel_watch: CancelWatch = field(default_factory=CancelWatch)
    retry_event_every_s: float = RETRY_EVENT_EVERY_S
    draft_every_s: float = DRAFT_EVERY_S

    async def run(self, task: CombineTask, *, first: bool = False) -> Report | None:
        """Write the report (once); a job with nothing to combine fails with the reason. A
        `first` delivery (SQS's receive count 1) does not look for the report first."""
        try:
            return await self._run(task, first)
        except Exception as exc:
            await keep_failure(self.store, task.job_id, "combine", None, exc, self.clock)
            raise

    async def _run(self, task: CombineTask, first: bool) -> Report | None:
        bind_job(task.job_id)
        carried = [s for s in task.summaries or () if s.job_id == task.job_id]
        unread = sorted(set(task.indexes or ()) - {s.index for s in carried})
        # One round of reads, the summaries the fan-in saw (and did not hand over) included:
        # the combine is on every job's critical path.
        reads = await at_once(
            _CombineReads,
            # A first delivery, or a combine made locally in milliseconds (the offline one),
            # does not look for the report: its conditional write says whether it was there.
            existing=self.store.report(task.job_id)
            if worth_caching(self.summarizer, "combine") and not first
            else nothing(),
            cancelled=self.store.cancelled(task.job_id),
            job=self.store.job(task.job_id),
            retrieval=self.store.retrieval(task.job_id, task.level or 1),
            listed=self.store.summaries(task.job_id, unread),
        )
        if reads.existing is not None:
            return await self._finish_stored(reads.existing, reads.job)
        if reads.cancelled:
            return None
        job, retrieval, listed = reads.job, reads.retrieval, [*carried, *reads.listed]
        if retrieval is None:
            raise InvalidMessage(f"job {task.job_id} has not finished retrieval")
        started = self.clock()
        read = {s.index for s in listed}
        unread = [s.index for s in retrieval.usable if s.index not in read]
        summaries = (
            [*listed, *await self.store.summaries(task.job_id, unread)] if unread else listed
        )
        tree: _Tree | None = None
        if job.request.depth > 1:
            tree = await self._grow(task.level or 1, job, retrieval, summaries)
            if tree is None:  # the next level's follow-up questions are on their way
                return None
            retrieval, summaries = tree.retrieval, tree.summaries
        by_index = {s.index: s for s in summaries if s.state == "ok"}
        summarized = [s for s in retrieval.usable if s.index in by_index]
        if not summarized:
            reason = "no source could be summarized"
            await fail_job(
                self.store, job.job_id, "combine", reason, self.clock(), BatchPlace.of(job)
            )
            return None
        # Each source keeps its own number (index + 1), as its status, events and logs call
        # it: the report's numbers have gaps where a source was not used, never a renumbering.
        numbered = [
            SourceText(
                n=source_number(s.index), title=s.title, url=s.url, text=by_index[s.index].text
            )
            for s in summarized
        ]
        watch = RetryWatch(
            self.store, job.job_id, "combine", None, self.clock, self.retry_event_every_s
        )
        try:
            _, answered = await both(
                self.store.event(task.job_id, "combine_started", started),
                self._answer(task.job_id, job.request.question, numbered, watch),
            )
        except RetryableError as exc:  # SQS brings the message back; the error explains a DLQ
            await watch.keep(exc)
            raise
        if answered is None:
            return None
        combined, cache = answered
        citations = [
            Citation(n=t.n, index=s.index, url=t.url, title=t.title)
            for t, s in zip(numbered, summarized, strict=True)
        ]
        body, warnings = check_answer(combined.text, numbered)
        asking = tree.asking if tree is not None else Usage()
        if tree is not None:
            warnings = [*tree.notes, *warnings]
        if warnings:
            log.warning("the report's answer needed notes", extra={"warnings": warnings})
        reasons = {s.index: s.reason for s in summaries if s.state == "failed"}
        missing = [
            s
            if s.state in ("failed", "skipped")
            else s.model_copy(
                update={"state": "failed", "reason": reasons.get(s.index, "no summary")}
            )
            for s in retrieval.sources
            if s.index not in by_index
        ]
        report = Report(
            job_id=job.job_id,
            question=job.request.question,
            markdown=render_markdown(
                job.request.question,
                body,
                citations,
                missing,
                warnings=warnings,
                tree=tree.nodes if tree else None,
            ),
            citations=citations,
            missing=missing,
            model=self.summarizer.name,
            usage=sum((s.usage for s in summaries), combined.usage + asking),
            stage_usage={
                "summarize": sum((s.usage for s in summaries), Usage()),
                "combine": combined.usage,
                **({"follow_ups": asking} if asking.calls else {}),
            },
            created_at=self.clock(),
            warnings=warnings,
            tree=tree.nodes if tree else None,
        )
        # The cache entry beside the report; report.md beside the event (the API serves the
        # report from report.json, which is the commit point).
        kept, _ = await both(
            self.store.put_report(report, markdown=False), _keep(self.store, cache)
        )
        if kept is not report:  # another delivery's report was there first
            return await self._finish_stored(kept, job)
        await all_of(
            self.store.put_markdown(report),
            self.store.event(task.job_id, "report_ready", self.clock()),
            self.store.note_batch_job(BatchPlace.of(job), "done"),
        )
        metrics.count("JobsCompleted")
        metrics.record_usage(combined.usage)
        metrics.duration("StageDuration", _ms(started, self.clock()), stage="combine")
        return report

    async def _grow(
        self, level: int, job: JobRecord, retrieval: Retrieval, summaries: list[SummaryRecord]
    ) -> _Tree | None:
        """A deep job's level is in: ask the next level's follow-up questions and queue its
        research (None), or, when the tree is as deep as asked or its budget is spent, every
        level's sources and summaries for the report."""
        job_id = job.job_id
        plans, before = await both(
            self.store.plans(job_id, range(2, level + 1)),
            all_of(*(self.store.retrieval(job_id, n) for n in range(1, level))),
        )
        retrievals = [*(r for r in before if r is not None), retrieval]
        spent = sum((s.usage.cost_usd for s in summaries), plans[-1].spent_usd if plans else 0.0)
        texts = {s.index: s.text for s in summaries if s.state == "ok"}
        nodes = deep_research.nodes_of(job, plans, level, texts)
        documents = sum(len(r.usable) for r in retrievals)
        stop, _ = deep_research.stops_at(
            job, level, at=self.clock(), spent_usd=spent, documents=documents
        )
        # The budget allows another level: a model that can asks the follow-up questions
        # (once per delivery: a redelivery's plan is the first one's).
        proposed, usage = ({}, Usage()) if stop else await self._ask(job, nodes)
        grown = deep_research.next_plan(
            job,
            level,
            nodes,
            at=self.clock(),
            spent_usd=spent,
            documents=documents,
            proposed=proposed,
            usage=usage,
        )
        if isinstance(grown, LevelPlan):
            if self.queue is None:
                raise PermanentError("this combine has no queue to ask follow-up questions on")
            plan = await self.store.put_plan(grown)  # a redelivery's plan is the first one's
            research = self.queue.send("intake", [ResearchTask(job_id=job_id, level=plan.level)])
            # Keyed by the stored plan's time, the event is one object whoever writes it: a
            # redelivery writes it again in case the first delivery failed before it did.
            asked = len(plan.follow_ups)
            detail = f"level {plan.level}: {asked} follow-up question{'s' * (asked > 1)}"
            await both(self.store.event(job_id, "level_started", plan.at, detail=detail), research)
            return None
        earlier = [s.index for r in retrievals[:-1] for s in r.usable]
        notes = [f"Deep research: {p.cut}." for p in plans if p.cut]
        if level > 1 and not retrieval.usable:
            notes.append(
                f"Deep research: the follow-up searches of level {level} found nothing new."
            )
        if grown is not None:
            notes.append(f"Deep research stopped at level {level} of {job.request.depth}: {grown}.")
        merged = Retrieval(
            job_id=job_id,
            sources=[s for r in retrievals for s in r.sources],
            started_at=retrievals[0].started_at,
            finished_at=retrieval.finished_at,
        )
        return _Tree(
            retrieval=merged,
            summaries=[*await self.store.summaries(job_id, earlier), *summaries],
            nodes=deep_research.tree(job, plans, retrievals),
            notes=notes,
            asking=sum((p.usage for p in plans), Usage()),
        )

    async def _ask(
        self, job: JobRecord, nodes: Sequence[deep_research.Node]
    ) -> tuple[dict[str, list[str]], Usage]:
        """The follow-up questions a model proposes for each node with findings, and what
        asking cost; none (offline questions) when the summarizer cannot ask, or a node's
        call fails for good."""
        ask = getattr(self.summarizer, "follow_ups", None)
        if ask is None:
            return {}, Usage()
        breadth, root = job.request.breadth, job.request.question
        found = [n for n in nodes if n.texts]

        async def one(node: deep_research.Node) -> tuple[list[str], Usage]:
            try:
                questions, usage = await ask(root, node.question, node.texts, breadth)
            except PermanentError as exc:
                log.warning("follow-up questions asked offline", extra={"reason": str(exc)})
                return [], Usage()
            return list(questions), usage

        answers = await all_of(*(one(n) for n in found))
        usage = sum((u for _, u in answers), Usage())
        return {n.node: qs for n, (qs, _) in zip(found, answers, strict=True) if qs}, usage

    async def _finish_stored(self, report: Report, job: JobRecord) -> Report:
        """Finish a report already stored: the delivery that stored it may have failed
        before report.md, the report_ready event (which ends every follower's stream) or the
        ledger's note. The event comes last: when it must wait for a twin's (a retry), the
        Markdown and the note are written already."""
        await all_of(
            self.store.put_markdown(report),
            self.store.note_batch_job(BatchPlace.of(job), "done"),
        )
        await self._report_ready_once(report)
        return report

    async def _report_ready_once(self, report: Report) -> None:
        """The report_ready event of a report already stored, unless it is listed. A report
        younger than `LOST_EVENT_AFTER_S` may be a twin delivery's, whose event is still on its
        way: this message comes back once that is past, rather than write a second event."""
        if await self.store.has_terminal_event(report.job_id, "report_ready"):
            return
        age_s = (self.clock() - report.created_at).total_seconds()
        if age_s < LOST_EVENT_AFTER_S:
            raise RetryableError(
                "the report's event may still be on its way", retry_after=LOST_EVENT_AFTER_S - age_s
            )
        await self.store.event(report.job_id, "report_ready", self.clock())

    async def _answer(
        self, job_id: str, question: str, numbered: Sequence[SourceText], watch: RetryWatch
    ) -> tuple[ModelText, tuple[str, CachedText] | None] | None:
        """The combined answer and its cache entry; None when the job was cancelled while
        the model worked (the call is stopped, and the event beside it still completes).
        A streaming model's text so far becomes the report's `Draft`."""
        draft = Draft(self.store, job_id, self.clock, self.draft_every_s)
        try:
            return await self.cancel_watch.run(
                partial(self.store.cancelled, job_id),
                _cached_combine(
                    self.store, self.summarizer, question, numbered, self.clock, watch, draft
                ),
                shared=job_id,
            )
        except StoppedByCancel:
            log.info("job cancelled: combine stopped")
            return None
        finally:
            await draft.close()


def _inline(record: M | None) -> M | None:
    """`record`, if it is small enough to ride along in a message (`INLINE_BYTES`)."""
    return record if record is not None and inline_size(record) <= INLINE_BYTES else None


async def _send_combine(
    store: JobStore,
    queue: TaskQueue,
    job_id: str,
    done: Iterable[int],
    level: int,
    ours: dict[int, SummaryRecord] | None = None,
) -> None:
    """Send the combine of `level` over the summaries `done` (those in `ours` ride along),
    then mark it sent, so that a later fan-in does not send it again."""
    combine = CombineTask(
        job_id=job_id,
        indexes=tuple(sorted(done)),
        summaries=_carried(ours or {}) or None,
        level=_past_first(level),
    )
    await queue.send("combine", [combine])
    await store.mark_combine_sent(job_id, level)


async def resume_fan_in(
    store: JobStore,
    queue: TaskQueue,
    job_id: str,
    names: Collection[str],
    now: datetime,
    claim_timeout_s: float,
) -> bool:
    """Send the combine of a job whose summaries are all stored and whose fan-in never sent
    it; whether this did. `names` are the job's objects (`keys.job` stripped).

    The summarize stage's fan-in heals a sender that died between its claim and its send
    through the claim owner's own message, which SQS brings back. A duplicate delivery can
    take that message away: the twin finds the summary written, lists before the last one
    exists, and acks; the original then claims, its send fails, and no delivery comes back.
    The sweeper calls this for a job that has been idle for `claim_timeout_s`: a claim older
    than that has no live owner, and a missing one had no fan-in to wait for.
    """
    deepest, within = keys.deepest_level(names)
    if keys.COMBINE_SENT in within or keys.RETRIEVAL not in within:
        return False  # sent (the combine's own retries and DLQ own it), or not retrieved yet
    retrieval = await store.retrieval(job_id, deepest)
    usable = {s.index for s in retrieval.usable} if retrieval else set()
    if not usable or any(keys.summary_name(i) not in names for i in usable):
        return False  # research sends an empty level's combine; a missing summary is awaited
    won, claim = await store.claim_combine(job_id, min(usable), now, deepest)
    if not won and (
        (now - claim.at).total_seconds() < claim_timeout_s
        or await store.combine_sent(job_id, deepest)
    ):
        return False
    await _send_combine(store, queue, job_id, usable, deepest)
    log.warning(
        "fan-in resumed: the combine was never sent",
        extra={"level": deepest, "claim_owner": None if won else claim.owner},
    )
    metrics.count("FanInsResumed")
    return True


def _past_first(level: int) -> int | None:
    """A message's `level`: None for the first (as every job's message was before deep
    research)."""
    return level if level > 1 else None


def _carried(summaries: dict[int, SummaryRecord]) -> tuple[SummaryRecord, ...]:
    """The summaries that fit in a combine message together (`INLINE_BYTES`), by index."""
    carried: list[SummaryRecord] = []
    room = INLINE_BYTES
    for index in sorted(summaries):
        size = inline_size(summaries[index])
        if size <= room:
            carried.append(summaries[index])
            room -= size
    return tuple(carried)


def worth_caching(summarizer: Summarizer, stage: Literal["summarize", "combine"]) -> bool:
    """Whether a stage's output is worth the model-output cache: not when the summarizer
    makes it locally in milliseconds (the offline one names the stages it does so in
    `local_stages`), where the cache's read and write would cost more than the work."""
    local: frozenset[str] = getattr(summarizer, "local_stages", frozenset())
    return stage not in local


async def _keep(store: JobStore, entry: tuple[str, CachedText] | None) -> None:
    """Write a model-output cache entry, if the stage made one."""
    if entry is not None:
        await store.cache_text(*entry)


async def _cached_combine(
    store: JobStore,
    summarizer: Summarizer,
    question: str,
    numbered: Sequence[SourceText],
    at: Clock,
    on_retry: OnModelRetry | None = None,
    draft: Draft | None = None,
) -> tuple[ModelText, tuple[str, CachedText] | None]:
    """The combined answer, from the cache when these exact summaries were combined before,
    and the cache entry to write (None: nothing new)."""
    parts = [f"[{t.n}] {t.title or ''} {t.url}\n{t.text}" for t in numbered]
    on_text = draft.update if draft is not None else None
    if not worth_caching(summarizer, "combine"):
        return await summarizer.combine(
            question, numbered, on_retry=on_retry, on_text=on_text
        ), None
    key = text_key(summarizer.name, "combine", question, *parts)
    cached = await store.cached_text(key)
    if cached is not None:
        return ModelText(cached.text), None
    combined = await summarizer.combine(question, numbered, on_retry=on_retry, on_text=on_text)
    entry = CachedText(
        model=summarizer.name, text=combined.text, usage=combined.usage, created_at=at()
    )
    return combined, (key, entry)


def summary_input(question: str, source: SourceRecord) -> str:
    """What a source's summary depends on besides the model: research names it in the
    summarize message, so the summary cache is read with the source (`SummarizeTask`)."""
    return digest(question, source.outcome.title or "", source.text)


def summary_key(model: str, input_digest: str) -> str:
    """The summary cache's key for `model` (with its prompt version) and an input digest."""
    return text_key(model, "summarize", input_digest)


UNCITED_ANSWER = (
    "The model's answer cites none of the sources it was given, so its claims cannot be "
    'traced to them; each source\'s summary, with its citation, is under "By source".'
)


def check_answer(answer: str, numbered: Sequence[SourceText]) -> tuple[str, list[str]]:
    """The model's answer as the report shows it, and what its reader must be told.

    Only `[n]` of a source the model was given survives; the report says how many others were
    removed, and when none survives, that the answer cites nothing (it then gets each
    source's summary under its citation, so the reader still has cited material).
    """
    body, removed = check_citations(answer, {t.n for t in numbered})
    warnings: list[str] = []
    if removed:
        count = len(removed)
        numbers = sorted(set(removed))
        # Numbers without brackets: the note itself must not read as a citation.
        warnings.append(
            f"{count} citation{'s' if count > 1 else ''} in the model's answer named no "
            f"source it was given (number{'s' if len(numbers) > 1 else ''} "
            f"{', '.join(map(str, numbers))}) and {'were' if count > 1 else 'was'} removed."
        )
    if not cited(body):
        warnings.append(UNCITED_ANSWER)
        body = f"{body.rstrip()}\n\n{by_source(numbered)}"
    return body, warnings


def render_markdown(
    question: str,
    body: str,
    citations: Sequence[Citation],
    missing: Sequence[SourceOutcome],
    *,
    warnings: Sequence[str] = (),
    tree: Sequence[TreeNode] | None = None,
) -> str:
    """The report as a reader sees it: a note for each warning above the checked body, a
    deep job's questions, then the sources it used and those it could not, each as `[n]`
    under its own number."""
    lines = [f"# {question}", ""]
    for warning in warnings:
        lines += [f"> **Note:** {warning}", ""]
    lines += [body.strip(), ""]
    if tree:
        lines += ["## Questions followed", ""]
        for node in tree:
            cited = "".join(f"[{source_number(i)}]" for i in node.sources) or "(nothing found)"
            lines.append(f"{'  ' * (node.level - 1)}- {node.node} {node.question} {cited}")
        lines.append("")
    lines += ["## Sources", ""]
    # `- [n]`, not `n.`: a Markdown viewer renumbers an ordered list from its first item,
    # which would hide the gaps the sources not used leave. The same page reached two ways
    # (a URL and a passage of it from a vector index, say) is one entry under both numbers.
    pages: dict[str, list[Citation]] = {}
    for c in citations:
        pages.setdefault(same_page(c.url), []).append(c)
    for same in pages.values():
        numbers = "".join(f"[{c.n}]" for c in same)
        titled = next((c for c in same if c.title), same[0])
        lines.append(f"- {numbers} [{titled.title or titled.url}]({same[0].url})")
    if missing:
        lines += ["", "## Sources not used", ""]
        lines += [
            f"- [{source_number(s.index)}] {s.url} — {s.reason or 'unknown reason'}"
            for s in missing
        ]
    return "\n".join(lines) + "\n"


async def _job_failed_once(store: JobStore, job_id: str, at: datetime) -> None:
    """The job_failed event of a failure already stored, unless it is listed; a failure
    younger than `LOST_EVENT_AFTER_S` has a writer still at work, its event on the way."""
    stored = await store.failure(job_id)
    if stored is None or (at - stored.at).total_seconds() < LOST_EVENT_AFTER_S:
        return
    if not await store.has_terminal_event(job_id, "job_failed"):
        await store.event(job_id, "job_failed", at, detail=stored.reason)


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


async def fail_job(
    store: JobStore,
    job_id: str,
    stage: FailedStage,
    reason: str,
    at: datetime,
    batch: BatchPlace | None,
) -> None:
    """Mark the job failed with `reason` (once: the first reason wins), count it, say so in
    its events, and note it in its batch's ledger (`batch`: the caller knows the job's place,
    or that it has none); every stage and the sweeper fail jobs through here."""
    failure = JobFailure(job_id=job_id, stage=stage, reason=reason, at=at)
    if await store.fail(failure):
        metrics.count("JobsFailed", stage=stage)
        await store.event(job_id, "job_failed", at, detail=reason)
    else:  # failed before: by a delivery that may have died before its event
        await _job_failed_once(store, job_id, at)
    await store.note_batch_job(batch, "failed")
