"""The sweeper on fakes: a job that stops making progress ends failed, with the reason."""

from __future__ import annotations

import asyncio

from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue
from brief.errors import StorageUnavailable
from brief.jobstore import JobStore
from brief.messages import ResearchTask, SummarizeTask
from brief.sweeper import Sweeper

from .world import HOST, World, page

QUESTION = "Why do glaciers move downhill?"
TIMEOUT_S = 2400.0


def sweeper(world: World, **options: float) -> Sweeper:
    return Sweeper(
        world.store,
        stall_timeout_s=options.get("stall_timeout_s", TIMEOUT_S),
        concurrency=int(options.get("concurrency", 4)),
        clock=world.clock,
    )


def sources(world: World, n: int = 2) -> list[str]:
    return [
        world.serve(f"/p{i}.html", page(f"Glaciers {i}", f"Ice flows downhill, part {i}."))
        for i in range(n)
    ]


async def research(world: World) -> list[SummarizeTask]:
    """Deliver the intake messages; return the summarize messages, which nobody receives."""
    for task in world.queue.take("intake"):
        assert isinstance(task, ResearchTask)
        await world.research().run(task)
    return [t for t in world.queue.take("summarize") if isinstance(t, SummarizeTask)]


async def kinds(world: World, job_id: str) -> list[str]:
    return [e.kind for _, e in await world.store.events(job_id)]


def open_entries(world: World) -> list[str]:
    return sorted(k for k in world.blobs.objects if k.startswith("open/"))


async def test_a_job_whose_messages_were_lost_is_failed_with_where_it_stopped(
    world: World,
) -> None:
    job_id = await world.submit(QUESTION, sources(world))
    tasks = await research(world)
    await world.summarize().run(tasks[0])  # the other summary's message is lost
    world.clock.advance(TIMEOUT_S + 60)

    report = await sweeper(world).sweep()

    view = await world.store.view(job_id)
    assert view.state == "failed"
    assert view.reason == (
        "no progress for 41 minutes (last step: summary_done for source 1); the job was given up"
    )
    assert (await kinds(world, job_id))[-1] == "job_failed"
    failure = await world.store.failure(job_id)
    assert failure is not None
    assert failure.stage == "summarize"
    assert report.failed == [job_id]
    assert open_entries(world) == []


async def test_a_job_never_picked_up_fails_at_its_first_step(world: World) -> None:
    job_id = await world.submit(QUESTION, sources(world))
    world.queue.take("intake")  # the research message never arrives
    world.clock.advance(3 * 3600)

    await sweeper(world).sweep()

    view = await world.store.view(job_id)
    assert view.reason == ("no progress for 3 hours (last step: job_created); the job was given up")


async def test_a_job_still_progressing_is_left_alone_however_old(world: World) -> None:
    job_id = await world.submit(QUESTION, sources(world))
    world.clock.advance(TIMEOUT_S * 2)  # long in the queue...
    await research(world)  # ...but it has just made progress
    world.clock.advance(TIMEOUT_S - 60)

    report = await sweeper(world).sweep()

    assert (await world.store.view(job_id)).state == "summarizing"
    assert report.checked == 1
    assert report.failed == []
    assert len(open_entries(world)) == 1  # still watched


async def test_a_young_job_costs_the_sweep_no_reads(world: World) -> None:
    await world.submit(QUESTION, sources(world))
    world.queue.take("intake")

    report = await sweeper(world).sweep()

    assert (report.open, report.checked, report.failed) == (1, 0, [])


async def test_ended_jobs_keep_their_outcome_and_leave_the_index(world: World) -> None:
    done = await world.submit(QUESTION, sources(world))
    await world.drain()
    failed = await world.submit(QUESTION, [f"http://{HOST}/missing.html"])
    await world.drain()
    cancelled = await world.submit(QUESTION, sources(world))
    await world.intake().cancel(cancelled, owner="alice")
    world.queue.take("intake")
    jobs = (done, failed, cancelled)
    before = {j: (await world.store.view(j), await kinds(world, j)) for j in jobs}
    assert [v.state for v, _ in before.values()] == ["done", "failed", "cancelled"]
    world.clock.advance(TIMEOUT_S * 3)

    report = await sweeper(world).sweep()

    for job_id, (view, events) in before.items():
        after = await world.store.view(job_id)
        assert (after.state, after.reason) == (view.state, view.reason)
        assert await kinds(world, job_id) == events
    assert (report.failed, report.closed) == ([], 3)
    assert open_entries(world) == []
    assert (await sweeper(world).sweep()).open == 0  # nothing left to look at


async def test_two_sweeps_at_once_fail_a_job_once(world: World) -> None:
    job_id = await world.submit(QUESTION, sources(world))
    await research(world)
    world.clock.advance(TIMEOUT_S + 1)

    await asyncio.gather(sweeper(world).sweep(), sweeper(world).sweep())

    assert (await kinds(world, job_id)).count("job_failed") == 1
    assert "last step: retrieval_done" in str((await world.store.view(job_id)).reason)
    assert open_entries(world) == []


async def test_an_entry_whose_job_was_never_stored_is_dropped_after_the_timeout(
    world: World,
) -> None:
    # A crash between the index entry and the request: the entry names no job.
    world.blobs.objects["open/0000000000000001-" + "a" * 32] = b""
    world.clock.advance(1)

    report = await sweeper(world).sweep()

    assert (report.closed, report.failed) == (1, [])
    assert open_entries(world) == []


class CountingBlobStore(MemoryBlobStore):
    """Counts listings in flight at once; fails listings of the jobs in `broken`."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self.broken: set[str] = set()

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        if any(job in prefix for job in self.broken):
            raise StorageUnavailable("S3 list failed: SlowDown")
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.001)
            return await super().list(prefix, after=after)
        finally:
            self.active -= 1


async def test_a_sweep_of_many_jobs_lists_a_few_at_a_time_and_survives_a_bad_one() -> None:
    blobs = CountingBlobStore()
    world = World(blobs, MemoryTaskQueue(), {})
    jobs = [await world.submit(QUESTION, sources(world, 1)) for _ in range(40)]
    world.queue.take("intake")
    blobs.broken = {jobs[7]}
    world.clock.advance(TIMEOUT_S + 1)

    report = await sweeper(world, concurrency=4).sweep()

    assert blobs.peak <= 4
    assert sorted(report.failed) == sorted(j for j in jobs if j != jobs[7])
    assert report.errors == 1
    assert open_entries(world) == [k for k in open_entries(world) if jobs[7] in k]  # retried next
    assert len(open_entries(world)) == 1


async def test_every_new_job_is_in_the_open_index() -> None:
    blobs = MemoryBlobStore()
    world = World(blobs, MemoryTaskQueue(), {})
    job_id = await world.submit(QUESTION, sources(world))
    entries = await JobStore(blobs).open_jobs()
    assert [(e.job_id, e.created_at) for e in entries] == [
        (job_id, (await world.store.job(job_id)).created_at)
    ]
