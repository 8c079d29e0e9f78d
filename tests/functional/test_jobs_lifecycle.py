"""Listing, cancelling and batching jobs, as their owner would see it."""

from __future__ import annotations

import pytest

from brief.errors import BatchNotFound, JobFinished, JobNotFound
from brief.ids import batch_job_id
from brief.messages import ExpandTask, SubmitTask, SummarizeTask
from brief.models import ResearchRequest

from .test_pipeline import PARAGRAPHS, QUESTION
from .world import World, page


def request(urls: list[str]) -> ResearchRequest:
    return ResearchRequest.model_validate({"question": QUESTION, "sources": urls})


def serve_two(world: World) -> list[str]:
    return [world.serve(f"/p{i}.html", page(f"Glacier {i}", *PARAGRAPHS[i])) for i in range(2)]


async def test_my_jobs_are_listed_newest_first_in_pages(world: World) -> None:
    urls = serve_two(world)
    ids = []
    for _ in range(5):
        ids.append(await world.submit(QUESTION, urls))
        world.clock.advance(1)
    page1, cursor = await world.store.owner_jobs("alice", limit=3)
    assert [j.job_id for j in page1] == ids[::-1][:3]
    assert cursor is not None
    page2, cursor2 = await world.store.owner_jobs("alice", after=cursor, limit=3)
    assert [j.job_id for j in page2] == ids[::-1][3:]
    assert cursor2 is None
    assert (await world.store.owner_jobs("bob"))[0] == []


async def test_a_cancelled_job_makes_no_more_model_calls(world: World) -> None:
    urls = serve_two(world)
    job_id = await world.submit(QUESTION, urls)
    for task in world.queue.take("intake"):
        await world.research().run(task)  # type: ignore[arg-type]
    await world.intake().cancel(job_id, owner="alice")
    await world.drain()
    view = await world.store.view(job_id)
    assert view.state == "cancelled"
    assert view.summaries_done == 0
    assert await world.store.report(job_id) is None
    kinds = [e.kind for _, e in await world.store.events(job_id)]
    assert kinds[-1] == "job_cancelled"


async def test_a_finished_job_cannot_be_cancelled_and_strangers_cannot_cancel(
    world: World,
) -> None:
    job_id = await world.submit(QUESTION, serve_two(world))
    with pytest.raises(JobNotFound):
        await world.intake().cancel(job_id, owner="mallory")
    await world.drain()
    with pytest.raises(JobFinished, match="already ended: it is done"):
        await world.intake().cancel(job_id, owner="alice")


async def test_a_second_cancel_is_refused_because_the_job_has_already_ended(
    world: World,
) -> None:
    job_id = await world.submit(QUESTION, serve_two(world))
    await world.intake().cancel(job_id, owner="alice")
    with pytest.raises(JobFinished, match="already ended: it is cancelled"):
        await world.intake().cancel(job_id, owner="alice")
    kinds = [e.kind for _, e in await world.store.events(job_id)]
    assert kinds.count("job_cancelled") == 1


async def test_a_batch_creates_each_job_from_its_message_and_reports_progress(
    world: World,
) -> None:
    urls = serve_two(world)
    intake = world.intake()
    batch = await intake.submit_batch(
        [request(urls), request(urls[:1]), request(urls[1:])], "alice"
    )
    assert batch.size == 3
    view = await world.store.batch_view(batch.batch_id, owner="alice")
    assert view.counts == {"pending": 3}

    # One message per chunk of requests, which the research function turns into one per job.
    assert world.queue.take("intake") == [ExpandTask(batch_id=batch.batch_id, first=0, count=3)]
    await world.research().run(ExpandTask(batch_id=batch.batch_id, first=0, count=3))
    tasks = world.queue.sent["intake"]
    assert tasks == [SubmitTask(batch_id=batch.batch_id, n=n) for n in range(3)]
    await world.drain()
    view = await world.store.batch_view(batch.batch_id, owner="alice")
    assert view.counts == {"done": 3}
    assert [j.job_id for j in view.jobs] == [batch_job_id(batch.batch_id, n) for n in range(3)]
    listed, _ = await world.store.owner_jobs("alice")
    assert {j.batch_id for j in listed} == {batch.batch_id}
    with pytest.raises(BatchNotFound):
        await world.store.batch_view(batch.batch_id, owner="bob")


async def test_a_redelivered_submit_message_creates_the_job_once(world: World) -> None:
    batch = await world.intake().submit_batch([request(serve_two(world))], "alice")
    (chunk,) = world.queue.take("intake")
    await world.research().run(chunk)  # type: ignore[arg-type]
    await world.research().run(chunk)  # type: ignore[arg-type] # a chunk delivered twice
    first, again = world.queue.take("intake")
    assert first == again == SubmitTask(batch_id=batch.batch_id, n=0)
    await world.research().run(first)
    await world.research().run(again)
    summaries = world.queue.take("summarize")
    assert len(summaries) == 4  # two sources, sent once per delivery; summaries are idempotent
    assert {t.job_id for t in summaries if isinstance(t, SummarizeTask)} == {
        batch_job_id(batch.batch_id, 0)
    }
    created = [k for k in world.blobs.objects if k.endswith("job_created.json")]
    assert len(created) == 1


async def test_a_batch_job_whose_creation_keeps_failing_shows_failed(world: World) -> None:
    batch = await world.intake().submit_batch([request(serve_two(world))], "alice")
    body = SubmitTask(batch_id=batch.batch_id, n=0).model_dump_json()
    assert await world.dead_letter().run(body, "arn:IntakeDeadLetterQueue") == batch_job_id(
        batch.batch_id, 0
    )
    view = await world.store.batch_view(batch.batch_id)
    assert view.counts == {"failed": 1}
