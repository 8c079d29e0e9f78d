"""The job store: Brief's S3 layout (`brief.keys`) over any `BlobStore`.

Every object of a job is written once; its status is derived from which keys exist, so there
is no mutable counter to race on. A batch's ledger is the one object many writers change, by
compare-and-swap (`jobstore.batches`), so a batch's status costs the same at any size. Each
concern is a class of its own (a job's records, its events, batches, owners' lists, the
model-output cache, dead letters, the open-jobs index, views);
`JobStore` is all of them over one blob store, the one seam the stages receive.
"""

from __future__ import annotations

from brief import keys
from brief.jobstore.batches import CHUNK_SIZE, BatchPlace, ledger_state
from brief.jobstore.cache import TextCache, digest, text_key
from brief.jobstore.dead import DeadLetters
from brief.jobstore.open import OpenJob, OpenJobs
from brief.jobstore.owners import OwnerIndex
from brief.jobstore.state import state_from_keys, timings_from_keys
from brief.jobstore.views import JobViews, Progress
from brief.models import JobRecord

__all__ = [
    "CHUNK_SIZE",
    "BatchPlace",
    "JobStore",
    "OpenJob",
    "Progress",
    "digest",
    "ledger_state",
    "state_from_keys",
    "text_key",
    "timings_from_keys",
]


class JobStore(JobViews, OwnerIndex, TextCache, DeadLetters, OpenJobs):
    """Reads and writes a job's records; each `put_*` returns False if it already existed."""

    async def create(self, record: JobRecord) -> bool:
        """Store the validated request; the job exists from here on.

        Its entry in the open-jobs index is written first, so no job can exist that the
        sweeper does not watch (a crash in between leaves an entry without a job, which the
        sweeper drops)."""
        await self.watch(record)
        return await self._put(keys.request(record.job_id), record)
