"""Each owner's jobs, newest first, for `GET /jobs`."""

from __future__ import annotations

from brief import keys
from brief.jobstore.objects import Objects
from brief.models import JobRecord, JobSummary


class OwnerIndex(Objects):
    """One small object per job under its owner; the key's reversed time orders the list."""

    async def index_for_owner(self, record: JobRecord) -> None:
        """List the job under its owner, newest first (the key sorts by reversed time)."""
        summary = JobSummary(
            job_id=record.job_id,
            question=record.request.question[:300],
            created_at=record.created_at,
            batch_id=record.batch_id,
        )
        await self._put(keys.owner_job(record.owner, record.created_at, record.job_id), summary)

    async def owner_jobs(
        self, owner: str, *, after: str | None = None, limit: int = 20
    ) -> tuple[list[JobSummary], str | None]:
        """A page of the owner's jobs, newest first, and the cursor of the next page."""
        prefix = keys.owner_jobs(owner)
        listed = await self._blobs.list(prefix, after=f"{prefix}{after}" if after else None)
        page = listed[:limit]
        found = await self._get_each(page, JobSummary)
        cursor = page[-1].removeprefix(prefix) if len(listed) > limit else None
        return [j for j in found if j is not None], cursor
