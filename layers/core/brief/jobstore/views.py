"""What a job and a batch look like from outside: state, progress and timings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brief import deep as deep_research
from brief import keys
from brief.concurrency import all_of, at_once, both, each_bounded, nothing
from brief.ids import batch_job_id
from brief.jobstore.batches import BatchRecords, ledger_state
from brief.jobstore.events import EventLog
from brief.jobstore.jobs import JobRecords
from brief.jobstore.state import latest_waits, relative_names, state_from_keys, timings_from_keys
from brief.models import (
    BatchJob,
    BatchJobState,
    BatchRecord,
    BatchView,
    JobFailure,
    JobState,
    JobView,
    LedgerState,
    LevelPlan,
    ModelWait,
    Retrieval,
    SourceStatus,
)


@dataclass(frozen=True)
class Progress:
    """How far a job got: its state and its latest event (None when it has none)."""

    exists: bool
    state: JobState
    last_at: datetime | None
    last_kind: str | None
    last_index: int | None
    names: frozenset[str] = frozenset()  # its objects, by their names under `keys.job`


@dataclass(frozen=True)
class _ViewReads:
    """The round of reads a job's view needs once its listing says which objects exist."""

    retrievals: list[Retrieval | None]  # level by level
    plans: list[LevelPlan]  # a deep job's, level 2 on
    failure: JobFailure | None
    waiting: dict[int | None, ModelWait]


MAX_BATCH_PAGE = 1_000
"""Jobs in one page of a batch's status (each ~80 bytes of JSON)."""


@dataclass(frozen=True)
class _BatchReads:
    batch: BatchRecord
    ledger: dict[int, LedgerState]


class JobViews(JobRecords, EventLog, BatchRecords):
    """A job's or a batch's state from listings, reading only what the listing says exists."""

    async def view(self, job_id: str, *, owner: str | None = None) -> JobView:
        """The job's state, per-source outcomes and stage timings, from one listing."""
        record, listed = await both(
            self.job(job_id, owner=owner), self._blobs.list(keys.job(job_id))
        )
        present = relative_names(job_id, listed)
        state = state_from_keys(present)
        waits = latest_waits(listed, present) if state in ("summarizing", "combining") else {}
        # A deep job's later levels keep their retrieval and plan under `levels/`.
        retrieved = sorted(n for n, name in map(keys.level_of, present) if name == keys.RETRIEVAL)
        planned = [n for n, name in map(keys.level_of, present) if name == keys.PLAN]
        reads = await at_once(
            _ViewReads,
            retrievals=all_of(*(self.retrieval(job_id, n) for n in retrieved)),
            plans=self.plans(job_id, sorted(planned)),
            failure=self.failure(job_id) if keys.FAILED in present else nothing(),
            waiting=self._waits(waits),
        )
        retrievals = [r for r in reads.retrievals if r is not None]
        waiting = reads.waiting
        summaries = sum(1 for k in present if k.startswith(keys.SUMMARIES))
        expected = sum(len(r.usable) for r in retrievals) if retrievals else None
        sources = [
            SourceStatus(**s.model_dump(), waiting=waiting.get(s.index))
            for r in retrievals
            for s in r.sources
        ]
        tree = (
            deep_research.tree(record, reads.plans, retrievals)
            if record.request.depth > 1
            else None
        )
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
            reason=reads.failure.reason if reads.failure else None,
            waiting=waiting.get(None) if state == "combining" else None,
            timings=timings_from_keys(record.created_at, listed, reported_at=reported_at),
            usage=report.usage if report else None,
            stage_usage=report.stage_usage if report else {},
            warnings=report.warnings if report else [],
            tree=tree,
        )

    async def batch_view(
        self,
        batch_id: str,
        *,
        owner: str | None = None,
        after: int = -1,
        limit: int = MAX_BATCH_PAGE,
        states: frozenset[BatchJobState] | None = None,
    ) -> BatchView:
        """The batch's counts by state, and its jobs numbered after `after` (those in
        `states`, if given), at most `limit`: 5 reads whatever the batch's size (its record
        and the ledger's shards, at once)."""
        reads = await at_once(
            _BatchReads, batch=self.batch(batch_id, owner=owner), ledger=self.ledger(batch_id)
        )
        batch, ledger = reads.batch, reads.ledger
        if batch.chunk_size is None:  # stored before the ledger: its jobs' own keys say
            ledger = await self._listed_states(batch)
        counts: dict[str, int] = {}
        for held in ledger.values():
            counts[held] = counts.get(held, 0) + 1
        if batch.size > len(ledger):
            counts["pending"] = batch.size - len(ledger)
        jobs: list[BatchJob] = []
        n = after + 1
        while n < batch.size and len(jobs) < limit:
            state: BatchJobState = ledger.get(n) or "pending"
            if states is None or state in states:
                jobs.append(BatchJob(n=n, job_id=batch_job_id(batch_id, n), state=state))
            n += 1
        more = n < batch.size and jobs and len(jobs) == limit
        return BatchView(
            batch_id=batch_id,
            created_at=batch.created_at,
            size=batch.size,
            counts=counts,
            jobs=jobs,
            cursor=jobs[-1].n if more else None,
        )

    async def _listed_states(self, batch: BatchRecord) -> dict[int, LedgerState]:
        """The started jobs of a batch stored before the ledger: one listing per job."""

        async def state(n: int) -> LedgerState | None:
            job_id = batch_job_id(batch.batch_id, n)
            present = await self.names(job_id)
            if keys.REQUEST not in present and keys.FAILED not in present:
                return None
            return ledger_state(state_from_keys(present))

        found = await each_bounded(range(batch.size), state, 32)
        return {n: s for n, s in enumerate(found) if s is not None}

    async def progress(self, job_id: str) -> Progress:
        """The job's state and its latest event, from one listing of its keys."""
        listed = await self._blobs.list(keys.job(job_id))
        present = relative_names(job_id, listed)
        last: keys.EventName | None = None
        for key in listed:
            name = keys.event_name(key)
            if name is not None and (last is None or name.micros >= last.micros):
                last = name
        return Progress(
            exists=keys.REQUEST in present,
            state=state_from_keys(present),
            last_at=keys.from_micros(last.micros) if last else None,
            last_kind=last.kind if last else None,
            last_index=last.index if last else None,
            names=frozenset(present),
        )
