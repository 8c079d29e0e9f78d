"""The fan-in on real conditional writes (moto's S3): at-least-once in, exactly-once out."""

from __future__ import annotations

import asyncio
from typing import Any

from brief.adapters.memory import MemoryTaskQueue
from brief.adapters.s3 import S3BlobStore
from brief.errors import RetryableError
from brief.extractive import ExtractiveSummarizer
from brief.jobstore import JobStore
from brief.messages import CombineTask, SummarizeTask
from brief.models import (
    JobRecord,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
    SourceRecord,
    utcnow,
)
from brief.pipeline import Combine, Summarize

JOB = "c" * 32
TEXT = (
    "Honeybee scouts inspect many cavities before the swarm decides where to live. "
    "A good cavity holds about forty litres and has a small entrance high above the ground. "
    "Scouts dance longer for better sites, which recruits more scouts to inspect them. "
)


async def stored_job(store: JobStore, sources: int) -> None:
    urls = [f"https://example.org/{i}" for i in range(sources)]
    request = ResearchRequest.model_validate({"question": "How do bees pick?", "sources": urls})
    now = utcnow()
    await store.create(JobRecord(job_id=JOB, owner="a", created_at=now, request=request))
    outcomes = [
        SourceOutcome(index=i, url=u, state="ok", title=f"T{i}") for i, u in enumerate(urls)
    ]
    await asyncio.gather(
        *(
            store.put_source(SourceRecord(job_id=JOB, outcome=o, text=TEXT, fetched_at=now))
            for o in outcomes
        )
    )
    await store.put_retrieval(
        Retrieval(job_id=JOB, sources=outcomes, started_at=now, finished_at=now)
    )


async def test_ten_sources_delivered_three_times_at_once_send_one_combine_and_one_report(
    s3: Any, bucket: str
) -> None:
    store = JobStore(S3BlobStore(s3, bucket))
    await stored_job(store, 10)
    queue = MemoryTaskQueue()
    stage = Summarize(store, queue, ExtractiveSummarizer())
    tasks = [SummarizeTask(job_id=JOB, index=i, expected=10) for i in range(10)] * 3

    pending = tasks
    for _ in range(3):  # a retryable failure comes back, as SQS would bring it
        outcomes = await asyncio.gather(*(stage.run(t) for t in pending), return_exceptions=True)
        assert all(o is None or isinstance(o, RetryableError) for o in outcomes), outcomes
        pending = [t for t, o in zip(pending, outcomes, strict=True) if o is not None]
    assert pending == []
    [sent] = queue.sent["combine"]
    assert isinstance(sent, CombineTask)
    assert (sent.job_id, sent.indexes) == (JOB, tuple(range(10)))
    # What rode along is what is stored.
    for carried in sent.summaries or ():
        assert await store.summary(JOB, carried.index) == carried

    combine = Combine(store, ExtractiveSummarizer())
    # A twin that finds the report stored before its report_ready event is listed comes back
    # later (RetryableError), as SQS would bring it; by then the winner's event is there.
    runs = [combine.run(CombineTask(job_id=JOB)) for _ in range(3)]
    delivered = await asyncio.gather(*runs, return_exceptions=True)
    assert all(not isinstance(d, BaseException) or isinstance(d, RetryableError) for d in delivered)
    retried = [d for d in delivered if isinstance(d, BaseException)]
    again = [combine.run(CombineTask(job_id=JOB)) for _ in retried]
    reports = [d for d in delivered if not isinstance(d, BaseException)]
    reports += await asyncio.gather(*again)
    assert reports[0] is not None
    assert all(r == reports[0] for r in reports)
    listing = await s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{JOB}/report")
    assert sorted(o["Key"] for o in listing["Contents"]) == [
        f"jobs/{JOB}/report.json",
        f"jobs/{JOB}/report.md",
    ]
    assert len(reports[0].citations) == 10
    kinds = [event.kind for _, event in await store.events(JOB)]
    assert kinds.count("report_ready") == 1
