"""The sweeper's open-jobs index on S3 (moto's server): entries are created with the job,
read without a GET, and dropped idempotently."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from brief.adapters.s3 import S3BlobStore
from brief.ids import new_job_id
from brief.jobstore import JobStore
from brief.models import JobRecord, ResearchRequest, utcnow
from brief.sweeper import Sweeper


def record(created_offset_s: float = 0) -> JobRecord:
    request = ResearchRequest.model_validate(
        {"question": "Why is the sky blue?", "sources": ["https://example.org/a"]}
    )
    created = utcnow() + timedelta(seconds=created_offset_s)
    return JobRecord(job_id=new_job_id(), owner="alice", created_at=created, request=request)


async def test_delete_removes_a_key_and_ignores_a_missing_one(s3: Any, bucket: str) -> None:
    blobs = S3BlobStore(s3, bucket)
    await blobs.put("open/x", b"")
    await blobs.delete("open/x")
    await blobs.delete("open/x")  # twice: two sweeps at once
    assert await blobs.list("open/") == []


async def test_jobs_are_listed_oldest_first_with_their_creation_time(s3: Any, bucket: str) -> None:
    store = JobStore(S3BlobStore(s3, bucket))
    newer, older = record(), record(-60)
    await store.create(newer)
    await store.create(older)

    entries = await store.open_jobs()

    assert [(e.job_id, e.created_at) for e in entries] == [
        (older.job_id, older.created_at),
        (newer.job_id, newer.created_at),
    ]


async def test_a_sweep_on_s3_fails_the_stalled_job_and_empties_the_index(
    s3: Any, bucket: str
) -> None:
    store = JobStore(S3BlobStore(s3, bucket))
    job = record(-3600)
    await store.create(job)
    await store.event(job.job_id, "job_created", job.created_at)

    report = await Sweeper(store, stall_timeout_s=1800).sweep()

    assert report.failed == [job.job_id]
    view = await store.view(job.job_id)
    assert view.state == "failed"
    assert (
        view.reason == "no progress for 60 minutes (last step: job_created); the job was given up"
    )
    assert await store.open_jobs() == []
