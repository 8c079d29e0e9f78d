"""A delivery that died between a job's last record and its terminal event leaves the
event to its redelivery, so nobody following the job waits for an event that never comes."""

from __future__ import annotations

import asyncio

import pytest

from brief import keys
from brief.errors import RetryableError
from brief.jobstore import JobStore
from brief.messages import CombineTask
from brief.models import JobFailure
from brief.pipeline import fail_job

from .test_pipeline import researched
from .world import World


def kinds(world: World, job_id: str) -> list[str]:
    """The job's event objects, by kind (`report_ready.json`), in time order."""
    prefix = keys.events(job_id)
    listed = sorted(k for k in world.blobs.objects if k.startswith(prefix))
    return [k.removeprefix(prefix).split("-", 1)[1] for k in listed]


async def summarized(world: World) -> tuple[str, CombineTask]:
    """A job researched and summarized: its id, and the combine message its fan-in sent."""
    job_id, tasks = await researched(world)
    summarize = world.summarize()
    await asyncio.gather(*(summarize.run(t) for t in tasks))
    (task,) = world.queue.take("combine")
    assert isinstance(task, CombineTask)
    return job_id, task


_EVENT = JobStore.event


async def dies_at_report_ready(self, job_id, kind, at, **kw):  # type: ignore[no-untyped-def]
    """JobStore.event, for a container that dies as it writes report_ready."""
    if kind == "report_ready":
        raise ConnectionError("container died")
    await _EVENT(self, job_id, kind, at, **kw)


async def test_a_combine_that_died_before_report_ready_is_finished_by_its_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, task = await summarized(world)
    with monkeypatch.context() as patched:
        patched.setattr(JobStore, "event", dies_at_report_ready)
        with pytest.raises(ConnectionError):
            await world.combine().run(task)
    assert "report.json" in {k.rsplit("/", 1)[-1] for k in world.blobs.objects}
    assert "report_ready.json" not in kinds(world, job_id)

    # A twin delivery at the same moment: the event may be on its way, so it comes back later.
    with pytest.raises(RetryableError):
        await world.combine().run(task)
    assert "report_ready.json" not in kinds(world, job_id)
    world.clock.advance(30)
    await world.combine().run(task)  # SQS brings the message back
    await world.combine().run(task)  # and once more: still one event
    assert kinds(world, job_id).count("report_ready.json") == 1


async def test_a_twin_that_must_wait_for_the_event_still_writes_report_md(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, task = await summarized(world)

    async def dies(*args: object, **kwargs: object) -> None:
        raise ConnectionError("container died")

    with monkeypatch.context() as patched:  # the first delivery stored report.json only
        patched.setattr(JobStore, "put_markdown", dies)
        patched.setattr(JobStore, "event", dies_at_report_ready)
        with pytest.raises(ConnectionError):
            await world.combine().run(task)
    names = {k.rsplit("/", 1)[-1] for k in world.blobs.objects if job_id in k}
    assert "report.json" in names
    assert "report.md" not in names

    # The twin leaves the event for later, not the Markdown: a reader can have the report now
    # (a PUT that takes longer than the event's listing is not cut short).
    real_markdown = JobStore.put_markdown

    async def slow_markdown(self, report):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        await real_markdown(self, report)

    with monkeypatch.context() as patched:
        patched.setattr(JobStore, "put_markdown", slow_markdown)
        with pytest.raises(RetryableError):
            await world.combine().run(task)
    assert "report.md" in {k.rsplit("/", 1)[-1] for k in world.blobs.objects if job_id in k}
    assert "report_ready.json" not in kinds(world, job_id)


async def test_a_failure_whose_event_was_lost_gets_it_from_the_next_failer(world: World) -> None:
    job_id, _ = await researched(world)
    # The failure is stored; the delivery that stored it died before its event.
    failure = JobFailure(
        job_id=job_id, stage="summarize", reason="the model refused", at=world.clock()
    )
    await world.store.fail(failure)

    await fail_job(world.store, job_id, "summarize", "a later reason", world.clock(), None)
    assert [e for _, e in await world.store.events(job_id) if e.kind == "job_failed"] == []
    world.clock.advance(30)  # a twin at the same moment wrote nothing; a late failer heals it
    await fail_job(world.store, job_id, "summarize", "a later reason", world.clock(), None)
    await fail_job(world.store, job_id, "summarize", "a later reason", world.clock(), None)

    events = [e for _, e in await world.store.events(job_id) if e.kind == "job_failed"]
    assert [e.detail for e in events] == ["the model refused"]  # the first reason wins
