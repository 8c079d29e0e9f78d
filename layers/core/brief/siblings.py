"""The summaries of one job that arrive in the same SQS batch ("siblings").

SQS hands the summarize function up to ten messages at once, and a job's messages, sent
together by its research, usually arrive together. Siblings share what they can: one read of
the cancel marker, their progress events' writes (`EventBatch`), and one fan-in — only the
last of them to finish tries the claim, and it need not list the job's summaries when its
siblings wrote every one (it passes them to the combine, too); the others skip theirs. A
record that fails counts as finished too: its redelivery runs the fan-in it would have run.

Only a delivery that has just written its summary may skip its fan-in; a redelivery (whose
summary was already there) may be the one that owns the combine's claim, so it always runs
its own (`brief.pipeline.Summarize._fan_in`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from brief.eventbatch import EventBatch
from brief.models import SummaryRecord

SHARED_READ_S = 1.0
"""How long a sibling's read of the cancel marker stands for the others: a record that
starts later (its batch runs under a concurrency bound) reads the marker again."""


class Siblings:
    """Which records of each job one batch holds, and what they share (one per invocation)."""

    def __init__(self, records: Iterable[tuple[str, int]] = ()) -> None:
        self._running: dict[str, Counter[int]] = {}
        for job_id, index in records:
            self._running.setdefault(job_id, Counter())[index] += 1
        self._cancel_reads: dict[str, tuple[float, asyncio.Task[bool]]] = {}
        self._events: dict[str, EventBatch] = {}
        self._written: dict[str, dict[int, SummaryRecord]] = {}

    def events(self, job_id: str, new: Callable[[], EventBatch]) -> EventBatch:
        """The job's progress events in this batch, written together (the last sibling to
        finish closes it)."""
        if job_id not in self._running:
            return new()  # no sibling to share with
        if job_id not in self._events:
            self._events[job_id] = new()
        return self._events[job_id]

    def wrote(self, summary: SummaryRecord) -> None:
        """Note a summary this batch has just written (no other delivery wrote it); only for
        the jobs of the batch's records."""
        if summary.job_id in self._running:
            self._written.setdefault(summary.job_id, {})[summary.index] = summary

    def written(self, job_id: str) -> dict[int, SummaryRecord]:
        """The job's summaries this batch has written, by index, given to the last sibling
        to finish (and forgotten here)."""
        self._events.pop(job_id, None)
        return self._written.pop(job_id, {})

    async def cancelled(self, job_id: str, read: Callable[[], Awaitable[bool]]) -> bool:
        """Whether the job was cancelled: one read for the siblings that ask within
        `SHARED_READ_S` of each other."""
        if sum(self._running.get(job_id, Counter()).values()) < 2:
            return await read()
        now = time.monotonic()
        shared = self._cancel_reads.get(job_id)
        if shared is None or now - shared[0] > SHARED_READ_S:
            shared = (now, asyncio.ensure_future(read()))
            self._cancel_reads[job_id] = shared
        return await asyncio.shield(shared[1])  # one sibling cancelled leaves the read to others

    def finished(self, job_id: str, index: int) -> bool:
        """Count one record of the job as finished; True when none of its siblings is still
        running (then it runs the job's fan-in)."""
        running = self._running.get(job_id)
        if running is None:
            return True
        running[index] -= 1
        if running[index] <= 0:
            del running[index]
        return not running
