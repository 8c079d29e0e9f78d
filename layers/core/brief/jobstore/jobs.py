"""A job's own records: request, sources, retrieval, summaries, the fan-in, report, end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from brief import keys
from brief.concurrency import all_of
from brief.errors import JobNotFound
from brief.jobstore.objects import Objects
from brief.models import (
    CombineClaim,
    Expansion,
    JobCancelled,
    JobFailure,
    JobRecord,
    LevelPlan,
    Report,
    Retrieval,
    SourceRecord,
    SummaryRecord,
)


class JobRecords(Objects):
    """Each record of a job, written once (`put_*` returns False if it already existed)."""

    async def job(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """The job's request; JobNotFound if there is none, or it is not `owner`'s."""
        record = await self._get(keys.request(job_id), JobRecord)
        if record is None or (owner is not None and record.owner != owner):
            raise JobNotFound(job_id)
        return record

    async def names(self, job_id: str) -> set[str]:
        """The names of every object the job has (relative to its prefix), from one listing:
        which of its records exist, without reading any (`brief.jobstore.state`)."""
        prefix = keys.job(job_id)
        return {k.removeprefix(prefix) for k in await self._blobs.list(prefix)}

    # -- retrieval ------------------------------------------------------------------------

    async def put_source(self, record: SourceRecord) -> bool:
        """Store one source's outcome and text."""
        return await self._put(keys.source(record.job_id, record.outcome.index), record)

    async def source(self, job_id: str, index: int) -> SourceRecord | None:
        """One stored source, or None."""
        return await self._get(keys.source(job_id, index), SourceRecord)

    async def sources(self, job_id: str, names: set[str] | None = None) -> list[SourceRecord]:
        """Every source stored so far (used when retrieval resumes after a crash); from
        `names` (the job's, `names`) when given, else from a listing."""
        listed = await self._listed(job_id, keys.SOURCES, names)
        return [s for s in await self._get_each(listed, SourceRecord) if s is not None]

    async def put_expansion(self, expansion: Expansion) -> Expansion:
        """Store what a search found; if another delivery stored it first, return theirs."""
        key = keys.expansion(expansion.job_id, expansion.position)
        if await self._put(key, expansion):
            return expansion
        return await self._get(key, Expansion) or expansion

    async def expansions(self, job_id: str, names: set[str] | None = None) -> dict[int, Expansion]:
        """Searches already run for this job, by their position in the request (from
        `names` when given, as `sources`)."""
        listed = await self._listed(job_id, keys.EXPANSIONS, names)
        found = await self._get_each(listed, Expansion)
        return {e.position: e for e in found if e is not None}

    async def put_retrieval(self, retrieval: Retrieval) -> bool:
        """Store the outcome of every source; retrieval is over once this exists."""
        return await self._put(keys.retrieval(retrieval.job_id, retrieval.level), retrieval)

    async def retrieval(self, job_id: str, level: int = 1) -> Retrieval | None:
        """The retrieval summary (of a deep job's `level`), once retrieval is over."""
        return await self._get(keys.retrieval(job_id, level), Retrieval)

    async def put_plan(self, plan: LevelPlan) -> LevelPlan:
        """Store a deep job's level plan; if another delivery stored one first, that one."""
        if await self._put(keys.plan(plan.job_id, plan.level), plan):
            return plan
        stored = await self._get(keys.plan(plan.job_id, plan.level), LevelPlan)
        assert stored is not None  # it was there a moment ago; S3 is consistent
        return stored

    async def plans(self, job_id: str, levels: Sequence[int]) -> list[LevelPlan]:
        """The plans of a deep job's `levels` (2 or more) that exist, in order."""
        found = await all_of(*(self._get(keys.plan(job_id, n), LevelPlan) for n in levels))
        return [p for p in found if p is not None]

    async def _listed(self, job_id: str, under: str, names: set[str] | None) -> list[str]:
        """The keys of the job's objects under `under` (`keys.SOURCES`, ...): picked from
        `names` when the caller listed the job already, else listed."""
        if names is None:
            return await self._blobs.list(keys.job(job_id) + under)
        return [keys.job(job_id) + n for n in sorted(names) if n.startswith(under)]

    # -- summaries and the fan-in ---------------------------------------------------------

    async def put_summary(self, summary: SummaryRecord) -> bool:
        """Store the summary of one source."""
        return await self._put(keys.summary(summary.job_id, summary.index), summary)

    async def summary(self, job_id: str, index: int) -> SummaryRecord | None:
        """One stored summary, or None."""
        return await self._get(keys.summary(job_id, index), SummaryRecord)

    async def summary_indexes(self, job_id: str) -> set[int]:
        """Which sources have a summary (a listing, not a read of each)."""
        listed = await self._blobs.list(keys.summaries(job_id))
        return {i for k in listed if (i := keys.summary_index(k)) is not None}

    async def summaries(self, job_id: str, indexes: Sequence[int]) -> list[SummaryRecord]:
        """The summaries of `indexes`, read concurrently, in the order given."""
        found = await all_of(*(self.summary(job_id, i) for i in indexes))
        return [s for s in found if s is not None]

    async def claim_combine(
        self, job_id: str, owner: int, at: datetime, level: int = 1
    ) -> tuple[bool, CombineClaim]:
        """Try to become the one delivery that sends the combine (of `level`); returns (won,
        the claim)."""
        claim = CombineClaim(job_id=job_id, owner=owner, at=at, level=level)
        if await self.try_claim_combine(claim):
            return True, claim
        stored = await self._get(keys.combine_claim(job_id, level), CombineClaim)
        return False, stored or claim

    async def try_claim_combine(self, claim: CombineClaim) -> bool:
        """Whether `claim` became the combine's claim (one write; the loser's read of the
        claim that won is `claim_combine`'s, for a caller that may own it)."""
        return await self._put(keys.combine_claim(claim.job_id, claim.level), claim)

    async def mark_combine_sent(self, job_id: str, level: int = 1) -> None:
        """Record that the combine message went out, so a redelivery does not resend it."""
        await self._mark(keys.combine_sent(job_id, level))

    async def combine_sent(self, job_id: str, level: int = 1) -> bool:
        """Whether the combine message (of `level`) is known to have been sent."""
        return await self._present(keys.combine_sent(job_id, level))

    # -- the end: a report, a failure, or a cancel ----------------------------------------

    async def put_report(self, report: Report, *, markdown: bool = True) -> Report:
        """Store the report; if another worker stored one first, return that one instead.

        `report.json` is the commit point; `report.md` is always written from the winning
        JSON (here, or by the caller with `put_markdown` when `markdown` is False), so the
        two can never disagree.
        """
        if not await self._put(keys.report(report.job_id), report):
            stored = await self.report(report.job_id)
            assert stored is not None  # it was there a moment ago; S3 is consistent
            report = stored
        if markdown:
            await self.put_markdown(report)
        return report

    async def put_markdown(self, report: Report) -> None:
        """Write `report.md` from the stored report (again, if a delivery died before it)."""
        await self._blobs.put(
            keys.report_markdown(report.job_id),
            report.markdown.encode(),
            content_type="text/markdown",
        )

    async def report(self, job_id: str) -> Report | None:
        """The report, once there is one."""
        return await self._get(keys.report(job_id), Report)

    async def report_markdown(self, job_id: str) -> str | None:
        """The report as Markdown, once there is one."""
        body = await self._blobs.get(keys.report_markdown(job_id))
        return body.decode() if body is not None else None

    async def fail(self, failure: JobFailure) -> bool:
        """Mark the job failed with its reason (the first reason wins)."""
        return await self._put(keys.failed(failure.job_id), failure)

    async def failure(self, job_id: str) -> JobFailure | None:
        """Why the job failed, if it did."""
        return await self._get(keys.failed(job_id), JobFailure)

    async def cancel(self, job_id: str, at: datetime) -> bool:
        """Mark the job cancelled; False if it already was."""
        return await self._put(keys.cancelled(job_id), JobCancelled(job_id=job_id, at=at))

    async def cancelled(self, job_id: str) -> bool:
        """Whether the job was cancelled (stages check before every model call)."""
        return await self._present(keys.cancelled(job_id))
