"""The job store: Brief's S3 layout (docs/architecture.md) over any `BlobStore`.

Every object is written once; status is derived from which keys exist, so there is no
mutable counter to race on. Event keys begin with a microsecond timestamp, so listing them
returns them in order and a key is a cursor.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from brief.concurrency import all_of, both, nothing
from brief.errors import BatchNotFound, JobNotFound
from brief.ids import batch_job_id, owner_key
from brief.models import (
    BatchJob,
    BatchRecord,
    BatchView,
    CachedText,
    CombineClaim,
    DeadMessage,
    Event,
    EventKind,
    Expansion,
    JobCancelled,
    JobFailure,
    JobRecord,
    JobState,
    JobSummary,
    JobView,
    ModelRetry,
    ModelWait,
    Report,
    ResearchRequest,
    Retrieval,
    SourceRecord,
    SourceStatus,
    StageTimings,
    StepError,
    SummaryRecord,
)
from brief.ports import BlobStore

M = TypeVar("M", bound=BaseModel)

EVENT_CURSOR = re.compile(r"(\d{16})-([a-z_]+)(?:-(\d+))?\.json")
"""An event's cursor: its key under `jobs/{job}/events/`, time (µs) first, so cursors sort
as the events happened."""
_EVENT_KEY = re.compile(rf"/events/{EVENT_CURSOR.pattern}$")
_INDEX_KEY = re.compile(r"/(\d+)\.json$")


_NEWEST_FIRST = 10**16


DEAD_PREFIX = "dead/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def dead_key(queue: str, message_id: str) -> str:
    """Where a dead message is kept: by the queue it died on and its SQS message id."""
    return f"{DEAD_PREFIX}{queue}/{_UNSAFE.sub('_', message_id)[:128]}.json"


def job_prefix(job_id: str) -> str:
    """Every key of a job starts with this."""
    return f"jobs/{job_id}/"


class JobStore:
    """Reads and writes a job's records; each `put_*` returns False if it already existed."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    # -- writes (each once) -------------------------------------------------------------

    async def create(self, record: JobRecord) -> bool:
        """Store the validated request; the job exists from here on.

        Its entry in the open-jobs index is written first, so no job can exist that the
        sweeper does not watch (a crash in between leaves an entry without a job, which the
        sweeper drops)."""
        await self.watch(record)
        return await self._put(f"{job_prefix(record.job_id)}request.json", record)

    async def put_source(self, record: SourceRecord) -> bool:
        """Store one source's outcome and text."""
        key = f"{job_prefix(record.job_id)}sources/{record.outcome.index}.json"
        return await self._put(key, record)

    async def put_expansion(self, expansion: Expansion) -> Expansion:
        """Store what a search found; if another delivery stored it first, return theirs."""
        key = f"{job_prefix(expansion.job_id)}expansions/{expansion.position}.json"
        if await self._put(key, expansion):
            return expansion
        return await self._get(key, Expansion) or expansion

    async def expansions(self, job_id: str) -> dict[int, Expansion]:
        """Searches already run for this job, by their position in the request."""
        keys = await self._blobs.list(f"{job_prefix(job_id)}expansions/")
        found = await all_of(*(self._get(k, Expansion) for k in keys))
        return {e.position: e for e in found if e is not None}

    async def put_retrieval(self, retrieval: Retrieval) -> bool:
        """Store the outcome of every source; retrieval is over once this exists."""
        return await self._put(f"{job_prefix(retrieval.job_id)}retrieval.json", retrieval)

    async def put_summary(self, summary: SummaryRecord) -> bool:
        """Store the summary of one source."""
        key = f"{job_prefix(summary.job_id)}summaries/{summary.index}.json"
        return await self._put(key, summary)

    async def claim_combine(
        self, job_id: str, owner: int, at: datetime
    ) -> tuple[bool, CombineClaim]:
        """Try to become the one delivery that sends the combine; returns (won, the claim)."""
        key = f"{job_prefix(job_id)}combine.claim"
        claim = CombineClaim(job_id=job_id, owner=owner, at=at)
        if await self._put(key, claim):
            return True, claim
        stored = await self._get(key, CombineClaim)
        return False, stored or claim

    async def mark_combine_sent(self, job_id: str) -> None:
        """Record that the combine message went out, so a redelivery does not resend it."""
        await self._blobs.put(f"{job_prefix(job_id)}combine.sent", b"", content_type="text/plain")

    async def combine_sent(self, job_id: str) -> bool:
        """Whether the combine message is known to have been sent."""
        return await self._blobs.get(f"{job_prefix(job_id)}combine.sent") is not None

    async def put_report(self, report: Report, *, markdown: bool = True) -> Report:
        """Store the report; if another worker stored one first, return that one instead.

        `report.json` is the commit point; `report.md` is always written from the winning
        JSON (here, or by the caller with `put_markdown` when `markdown` is False), so the
        two can never disagree.
        """
        if not await self._put(f"{job_prefix(report.job_id)}report.json", report):
            stored = await self.report(report.job_id)
            assert stored is not None  # it was there a moment ago; S3 is consistent
            report = stored
        if markdown:
            await self.put_markdown(report)
        return report

    async def put_markdown(self, report: Report) -> None:
        """Write `report.md` from the stored report (again, if a delivery died before it)."""
        await self._blobs.put(
            f"{job_prefix(report.job_id)}report.md",
            report.markdown.encode(),
            content_type="text/markdown",
        )

    async def index_for_owner(self, record: JobRecord) -> None:
        """List the job under its owner, newest first (the key sorts by reversed time)."""
        newest_first = _NEWEST_FIRST - _micros(record.created_at)
        key = f"owners/{owner_key(record.owner)}/jobs/{newest_first:016d}-{record.job_id}.json"
        summary = JobSummary(
            job_id=record.job_id,
            question=record.request.question[:300],
            created_at=record.created_at,
            batch_id=record.batch_id,
        )
        await self._put(key, summary)

    async def owner_jobs(
        self, owner: str, *, after: str | None = None, limit: int = 20
    ) -> tuple[list[JobSummary], str | None]:
        """A page of the owner's jobs, newest first, and the cursor of the next page."""
        prefix = f"owners/{owner_key(owner)}/jobs/"
        keys = await self._blobs.list(prefix, after=f"{prefix}{after}" if after else None)
        page = keys[:limit]
        found = await all_of(*(self._get(k, JobSummary) for k in page))
        cursor = page[-1].removeprefix(prefix) if len(keys) > limit else None
        return [j for j in found if j is not None], cursor

    async def cancel(self, job_id: str, at: datetime) -> bool:
        """Mark the job cancelled; False if it already was."""
        return await self._put(
            f"{job_prefix(job_id)}cancelled.json", JobCancelled(job_id=job_id, at=at)
        )

    async def cancelled(self, job_id: str) -> bool:
        """Whether the job was cancelled (stages check before every model call)."""
        return await self._blobs.get(f"{job_prefix(job_id)}cancelled.json") is not None

    async def put_batch(self, batch: BatchRecord, requests: Sequence[ResearchRequest]) -> None:
        """Store a batch and each of its requests (the submit messages name them by number)."""
        prefix = f"batches/{batch.batch_id}/"
        await all_of(*(self._put(f"{prefix}requests/{n}.json", r) for n, r in enumerate(requests)))
        await self._put(f"{prefix}batch.json", batch)

    async def batch(self, batch_id: str, *, owner: str | None = None) -> BatchRecord:
        """The batch; BatchNotFound if there is none, or it is not `owner`'s."""
        batch = await self._get(f"batches/{batch_id}/batch.json", BatchRecord)
        if batch is None or (owner is not None and batch.owner != owner):
            raise BatchNotFound(batch_id)
        return batch

    async def batch_request(self, batch_id: str, n: int) -> ResearchRequest | None:
        """Request `n` of a batch."""
        return await self._get(f"batches/{batch_id}/requests/{n}.json", ResearchRequest)

    async def fail(self, failure: JobFailure) -> bool:
        """Mark the job failed with its reason (the first reason wins)."""
        return await self._put(f"{job_prefix(failure.job_id)}failed.json", failure)

    async def event(
        self,
        job_id: str,
        kind: EventKind,
        at: datetime,
        *,
        index: int | None = None,
        detail: str | None = None,
        retry: ModelRetry | None = None,
    ) -> None:
        """Append a progress event; its key sorts by time, so a listing is the timeline."""
        micros = _micros(at)
        suffix = f"-{index}" if index is not None else ""
        key = f"{job_prefix(job_id)}events/{micros:016d}-{kind}{suffix}.json"
        event = Event(job_id=job_id, kind=kind, at=at, index=index, detail=detail, retry=retry)
        await self._put(key, event)

    async def put_step_error(self, error: StepError) -> None:
        """Keep why a delivery of a step failed (one object per delivery, by time)."""
        prefix = _errors_prefix(error.job_id, error.step, error.index)
        key = f"{prefix}{_micros(error.at):016d}.json"
        await self._put(key, error)

    async def step_errors(self, job_id: str, step: str, index: int | None) -> list[StepError]:
        """Why each failed delivery of a step failed, oldest first."""
        keys = await self._blobs.list(_errors_prefix(job_id, step, index))
        found = await all_of(*(self._get(k, StepError) for k in keys))
        return [e for e in found if e is not None]

    # -- reads --------------------------------------------------------------------------

    async def job(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """The job's request; JobNotFound if there is none, or it is not `owner`'s."""
        record = await self._get(f"{job_prefix(job_id)}request.json", JobRecord)
        if record is None or (owner is not None and record.owner != owner):
            raise JobNotFound(job_id)
        return record

    async def source(self, job_id: str, index: int) -> SourceRecord | None:
        """One stored source, or None."""
        return await self._get(f"{job_prefix(job_id)}sources/{index}.json", SourceRecord)

    async def sources(self, job_id: str) -> list[SourceRecord]:
        """Every source stored so far (used when retrieval resumes after a crash)."""
        keys = await self._blobs.list(f"{job_prefix(job_id)}sources/")
        found = await all_of(*(self._get(k, SourceRecord) for k in keys))
        return [s for s in found if s is not None]

    async def retrieval(self, job_id: str) -> Retrieval | None:
        """The retrieval summary, once retrieval is over."""
        return await self._get(f"{job_prefix(job_id)}retrieval.json", Retrieval)

    async def summary(self, job_id: str, index: int) -> SummaryRecord | None:
        """One stored summary, or None."""
        return await self._get(f"{job_prefix(job_id)}summaries/{index}.json", SummaryRecord)

    async def summary_indexes(self, job_id: str) -> set[int]:
        """Which sources have a summary (a listing, not a read of each)."""
        keys = await self._blobs.list(f"{job_prefix(job_id)}summaries/")
        return {int(m.group(1)) for k in keys if (m := _INDEX_KEY.search(k))}

    async def summaries(self, job_id: str, indexes: Sequence[int]) -> list[SummaryRecord]:
        """The summaries of `indexes`, read concurrently, in the order given."""
        found = await all_of(*(self.summary(job_id, i) for i in indexes))
        return [s for s in found if s is not None]

    async def report(self, job_id: str) -> Report | None:
        """The report, once there is one."""
        return await self._get(f"{job_prefix(job_id)}report.json", Report)

    async def report_markdown(self, job_id: str) -> str | None:
        """The report as Markdown, once there is one."""
        body = await self._blobs.get(f"{job_prefix(job_id)}report.md")
        return body.decode() if body is not None else None

    async def failure(self, job_id: str) -> JobFailure | None:
        """Why the job failed, if it did."""
        return await self._get(f"{job_prefix(job_id)}failed.json", JobFailure)

    async def events(self, job_id: str, *, after: str | None = None) -> list[tuple[str, Event]]:
        """Events in order, each with its cursor; only those after `after` when given."""
        prefix = f"{job_prefix(job_id)}events/"
        start = f"{prefix}{after}" if after else None
        keys = await self._blobs.list(prefix, after=start)
        found = await all_of(*(self._get(k, Event) for k in keys))
        return [(k.removeprefix(prefix), e) for k, e in zip(keys, found, strict=True) if e]

    async def event_cursors(self, job_id: str) -> list[str]:
        """Every event's cursor, in order, from one listing (no event is read)."""
        prefix = f"{job_prefix(job_id)}events/"
        return [k.removeprefix(prefix) for k in await self._blobs.list(prefix)]

    async def view(self, job_id: str, *, owner: str | None = None) -> JobView:
        """The job's state, per-source outcomes and stage timings, from one listing."""
        prefix = job_prefix(job_id)
        record, keys = await both(self.job(job_id, owner=owner), self._blobs.list(prefix))
        present = {k.removeprefix(prefix) for k in keys}
        state = state_from_keys(present)
        waits = _latest_waits(keys, present) if state in ("summarizing", "combining") else {}
        (retrieval, failure), waiting = await both(
            both(
                self.retrieval(job_id) if "retrieval.json" in present else nothing(),
                self.failure(job_id) if "failed.json" in present else nothing(),
            ),
            self._waits(waits),
        )
        summaries = sum(1 for k in present if k.startswith("summaries/"))
        expected = len(retrieval.usable) if retrieval else None
        sources = [
            SourceStatus(**s.model_dump(), waiting=waiting.get(s.index))
            for s in (retrieval.sources if retrieval else [])
        ]
        reported_at = None
        report = await self.report(job_id) if state == "done" else None
        if report is not None and not any("-report_ready" in k for k in present):
            # The report is durable but its event is not written yet: time it by the report.
            reported_at = report.created_at
        return JobView(
            job_id=job_id,
            state=state,
            question=record.request.question,
            created_at=record.created_at,
            sources=sources,
            summaries_done=summaries,
            summaries_expected=expected,
            reason=failure.reason if failure else None,
            waiting=waiting.get(None) if state == "combining" else None,
            timings=timings_from_keys(record.created_at, keys, reported_at=reported_at),
            usage=report.usage if report else None,
            stage_usage=report.stage_usage if report else {},
            warnings=report.warnings if report else [],
        )

    async def batch_view(self, batch_id: str, *, owner: str | None = None) -> BatchView:
        """Every job of a batch with its state, from one listing per job (no reads)."""
        batch = await self.batch(batch_id, owner=owner)
        bound = asyncio.Semaphore(32)

        async def state(n: int) -> BatchJob:
            job_id = batch_job_id(batch_id, n)
            prefix = job_prefix(job_id)
            async with bound:
                keys = await self._blobs.list(prefix)
            present = {k.removeprefix(prefix) for k in keys}
            if "request.json" not in present and "failed.json" not in present:
                return BatchJob(n=n, job_id=job_id, state="pending")
            return BatchJob(n=n, job_id=job_id, state=state_from_keys(present))

        jobs = await all_of(*(state(n) for n in range(batch.size)))
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.state] = counts.get(job.state, 0) + 1
        return BatchView(
            batch_id=batch_id,
            created_at=batch.created_at,
            size=batch.size,
            counts=counts,
            jobs=jobs,
        )

    # -- the model-output cache (content-addressed, shared by every job) ------------------

    async def cached_text(self, key: str) -> CachedText | None:
        """A model output stored under `key` (see `text_key`), if any."""
        return await self._get(f"cache/texts/{key}.json", CachedText)

    async def cache_text(self, key: str, cached: CachedText) -> None:
        """Remember a model output; the same input never needs the model again."""
        await self._put(f"cache/texts/{key}.json", cached)

    # -- dead letters (kept for an operator: `brief dlq show|redrive`) --------------------

    async def put_dead_message(self, dead: DeadMessage) -> bool:
        """Keep a dead message (once per SQS message: a redelivery writes nothing new)."""
        return await self._put(dead_key(dead.queue, dead.message_id), dead)

    async def dead_messages(self, queue: str | None = None) -> list[tuple[str, DeadMessage]]:
        """Every kept dead message (of one queue, when given), each with its key."""
        prefix = f"{DEAD_PREFIX}{queue}/" if queue else DEAD_PREFIX
        keys = await self._blobs.list(prefix)
        bound = asyncio.Semaphore(32)

        async def read(key: str) -> DeadMessage | None:
            async with bound:
                return await self._get(key, DeadMessage)

        found = await all_of(*(read(k) for k in keys))
        return [(k, d) for k, d in zip(keys, found, strict=True) if d is not None]

    async def _waits(self, keys: dict[int | None, str]) -> dict[int | None, ModelWait]:
        """The waits the `model_retry` events at `keys` describe, by source index (None: the
        combine's)."""
        events = await all_of(*(self._get(k, Event) for k in keys.values()))
        return {
            index: ModelWait(**event.retry.model_dump(), at=event.at, detail=event.detail or "")
            for index, event in zip(keys, events, strict=True)
            if event is not None and event.retry is not None
        }

    # -- plumbing -----------------------------------------------------------------------

    async def _put(self, key: str, model: BaseModel) -> bool:
        return await self._blobs.put(key, model.model_dump_json().encode())

    async def _get(self, key: str, model: type[M]) -> M | None:
        body = await self._blobs.get(key)
        if body is None:
            return None
        # As it was accepted: checks added for new requests since do not apply to it.
        return model.model_validate_json(body, context={"stored": True})

    # -- the open-jobs index (the sweeper's: every job not known to have ended) ------------

    async def open_jobs(self) -> list[OpenJob]:
        """Every entry of the open-jobs index, oldest job first (one listing, no reads)."""
        keys = await self._blobs.list(OPEN_PREFIX)
        found = [(k, _OPEN_KEY.fullmatch(k)) for k in keys]
        return [
            OpenJob(key=k, job_id=m.group(2), created_at=_from_micros(int(m.group(1))))
            for k, m in found
            if m
        ]

    async def progress(self, job_id: str) -> Progress:
        """The job's state and its latest event, from one listing of its keys."""
        prefix = job_prefix(job_id)
        keys = await self._blobs.list(prefix)
        present = {k.removeprefix(prefix) for k in keys}
        last: tuple[int, str, int | None] | None = None
        for key in keys:
            match = _EVENT_KEY.search(key)
            if match:
                index = int(match.group(3)) if match.group(3) is not None else None
                event = (int(match.group(1)), match.group(2), index)
                last = event if last is None or event[0] >= last[0] else last
        return Progress(
            exists="request.json" in present,
            state=state_from_keys(present),
            last_at=_from_micros(last[0]) if last else None,
            last_kind=last[1] if last else None,
            last_index=last[2] if last else None,
        )

    async def watch(self, record: JobRecord) -> None:
        """Enter the job in the open-jobs index (at creation; again when an operator revives
        a failed job, so the sweeper watches it once more)."""
        await self._blobs.put(open_key(record), b"", content_type="text/plain")

    async def close_open(self, entry: OpenJob) -> None:
        """Drop an entry from the open-jobs index (its job has ended, or never existed)."""
        await self._blobs.delete(entry.key)


def _errors_prefix(job_id: str, step: str, index: int | None) -> str:
    suffix = f"-{index}" if index is not None else ""
    return f"{job_prefix(job_id)}errors/{step}{suffix}/"


def _latest_waits(keys: Sequence[str], present: set[str]) -> dict[int | None, str]:
    """The key of each source's latest `model_retry` event, for the sources still without a
    summary (None: the combine's), from the job's listing."""
    latest: dict[int | None, tuple[int, str]] = {}
    for key in keys:
        match = _EVENT_KEY.search(key)
        if match is None or match.group(2) != "model_retry":
            continue
        index = int(match.group(3)) if match.group(3) is not None else None
        if index is not None and f"summaries/{index}.json" in present:
            continue
        micros = int(match.group(1))
        if index not in latest or micros >= latest[index][0]:
            latest[index] = (micros, key)
    return {index: key for index, (_, key) in latest.items()}


def state_from_keys(present: set[str]) -> JobState:
    """A job's state from the names of its objects (relative to `jobs/{job}/`)."""
    if "report.json" in present:
        return "done"
    if "failed.json" in present:
        return "failed"
    if "cancelled.json" in present:
        return "cancelled"
    if "combine.claim" in present:
        return "combining"
    if "retrieval.json" in present:
        return "summarizing"
    if any(k.startswith("events/") and "retrieval_started" in k for k in present):
        return "retrieving"
    return "queued"


def text_key(model: str, *parts: str) -> str:
    """The cache key of a model's output: the model (with its prompt version) and every input."""
    return digest(model, *parts)


def digest(first: str, *parts: str) -> str:
    """SHA-256 of the parts, each kept apart from the next (no two lists share a digest)."""
    hashed = hashlib.sha256(first.encode())
    for part in parts:
        hashed.update(b"\x00")
        hashed.update(part.encode())
    return hashed.hexdigest()


def timings_from_keys(
    created_at: datetime, keys: Sequence[str], *, reported_at: datetime | None = None
) -> StageTimings:
    """Stage timings from event keys alone (their names carry the time), no reads needed."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for key in keys:
        match = _EVENT_KEY.search(key)
        if match:
            micros, kind = int(match.group(1)), match.group(2)
            first[kind] = min(first.get(kind, micros), micros)
            last[kind] = max(last.get(kind, micros), micros)
    created = _micros(created_at)

    def span(start: int | None, end: int | None) -> int | None:
        return None if start is None or end is None else round((end - start) / 1000)

    retrieval_start = first.get("retrieval_started")
    retrieval_end = last.get("retrieval_done")
    summaries_end = last.get("summary_done")
    if "summary_failed" in last:
        summaries_end = max(summaries_end or 0, last["summary_failed"])
    report = first.get("report_ready")
    if report is None and reported_at is not None:
        report = _micros(reported_at)
    end = report or first.get("job_failed")
    return StageTimings(
        queued_ms=span(created, retrieval_start),
        retrieval_ms=span(retrieval_start, retrieval_end),
        summarize_ms=span(retrieval_end, summaries_end),
        combine_ms=span(summaries_end, report),
        total_ms=span(created, end),
    )


# -- the open-jobs index ------------------------------------------------------------------

OPEN_PREFIX = "open/"
_OPEN_KEY = re.compile(r"open/(\d{16})-([0-9a-f]{32})")


def open_key(record: JobRecord) -> str:
    """The job's entry in the open-jobs index: its creation time first, so a listing is
    oldest first and an entry's age is known without a read."""
    micros = _micros(record.created_at)
    return f"{OPEN_PREFIX}{micros:016d}-{record.job_id}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    """Microseconds since the epoch: how every key that carries a time spells it."""
    return int(at.timestamp() * 1_000_000)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class OpenJob:
    """An entry of the open-jobs index: a job that was not known to have ended."""

    key: str
    job_id: str
    created_at: datetime


@dataclass(frozen=True)
class Progress:
    """How far a job got: its state and its latest event (None when it has none)."""

    exists: bool
    state: JobState
    last_at: datetime | None
    last_kind: str | None
    last_index: int | None
