"""The open-jobs index: the sweeper's list of every job not known to have ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brief import keys
from brief.jobstore.objects import Objects
from brief.models import JobRecord


@dataclass(frozen=True)
class OpenJob:
    """An entry of the open-jobs index: a job that was not known to have ended."""

    key: str
    job_id: str
    created_at: datetime


class OpenJobs(Objects):
    """One empty object per open job, named by its creation time (a listing is oldest first)."""

    async def open_jobs(self) -> list[OpenJob]:
        """Every entry of the open-jobs index, oldest job first (one listing, no reads)."""
        listed = [(k, keys.open_job_name(k)) for k in await self._blobs.list(keys.OPEN)]
        return [OpenJob(key=k, job_id=name[1], created_at=name[0]) for k, name in listed if name]

    async def watch(self, record: JobRecord) -> None:
        """Enter the job in the open-jobs index (at creation; again when an operator revives
        a failed job, so the sweeper watches it once more)."""
        await self._mark(keys.open_job(record.created_at, record.job_id))

    async def close_open(self, entry: OpenJob) -> None:
        """Drop an entry from the open-jobs index (its job has ended, or never existed)."""
        await self._blobs.delete(entry.key)
