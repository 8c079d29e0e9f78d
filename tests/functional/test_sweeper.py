"""The sweeper on fakes: a job that stops making progress ends failed, with the reason."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

from brief import keys
from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue
from brief.deadletter import UNSAID
from brief.errors import StorageUnavailable
from brief.jobstore import JobStore
from brief.messages import CombineTask, ResearchTask, SummarizeTask
from brief.sweeper import Sweeper

from .test_dead_letters import DLQ
from .test_pipeline import researched
from .test_summary_siblings import batch
from .world import HOST, World, page

QUESTION = "Why do glaciers move downhill?"
TIMEOUT_S = 2400.0
CLAIM_TIMEOUT_S = 60.0  # as `World.summarize`'s


def sweeper(world: World, **options: float) -> Sweeper:
    return Sweeper(
        world.store,
        stall_timeout_s=options.get("stall_timeout_s", TIMEOUT_S),
        concurrency=int(options.get("concurrency", 4)),
        clock=world.clock,
        queue=world.queue,
        claim_timeout_s=CLAIM_TIMEOUT_S,
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


def claims_throttled(world: World, job_id: str) -> AbstractContextManager[None]:
    """S3 refuses every write of the job's fan-in claim meanwhile (SlowDown)."""
    return world.writes_refused(lambda key: key == keys.combine_claim(job_id))


async def twin_acked_the_fan_in_owner(world: World) -> str:
    """A job whose fan-in claim names a source whose message is gone, and whose combine was
    never sent: what a duplicate delivery and a failed send leave behind.

    Delivery A of source 0 writes its summary and lists the others; its twin B (SQS handed
    the same message to two invocations) finds the summary written, lists before source 4's
    summary exists, and acks the message. Source 4's delivery writes its summary and fails
    to write the claim (S3 throttled it). Then A's listing sees all five: A claims, and its
    send fails. A's record fails, but B has deleted the message: no delivery of source 0
    comes back. Source 4's redelivery finds the claim held by source 0 and acks.
    """
    job_id, tasks = await researched(world)
    t0, t4 = tasks[0], tasks[4]
    assert await batch(world, tasks[1:4]) == [None] * 3  # three of five: no fan-in yet

    a_listing, a_may_list = asyncio.Event(), asyncio.Event()
    real_list, real_send = world.blobs.list, world.queue.send
    held = [True]

    async def list_after_b(prefix: str, *, after: str | None = None) -> list[str]:
        if held[0] and prefix == keys.summaries(job_id):
            held[0] = False
            a_listing.set()
            await a_may_list.wait()
        return await real_list(prefix, after=after)

    world.blobs.list = list_after_b  # type: ignore[method-assign]
    a = asyncio.create_task(batch(world, [t0]))
    await a_listing.wait()
    assert await batch(world, [t0]) == [None]  # B: four of five listed; acked

    with claims_throttled(world, job_id):
        [failed_claim] = await batch(world, [t4])
    assert isinstance(failed_claim, StorageUnavailable)

    async def send_fails(role, messages):  # type: ignore[no-untyped-def]
        raise StorageUnavailable("SQS SendMessageBatch: InternalError")

    world.queue.send = send_fails  # type: ignore[method-assign]
    a_may_list.set()
    [failed_send] = await a
    assert isinstance(failed_send, StorageUnavailable)
    world.queue.send = real_send  # type: ignore[method-assign]
    assert await batch(world, [t4]) == [None]  # the claim is source 0's: acked
    assert world.queue.sent["combine"] == []
    return job_id


async def test_a_fan_in_whose_owner_message_is_gone_is_sent_by_the_sweeper(
    world: World,
) -> None:
    job_id = await twin_acked_the_fan_in_owner(world)
    assert (await world.store.view(job_id)).state == "combining"

    world.clock.advance(CLAIM_TIMEOUT_S / 2)  # the claim is young: its owner may be alive
    await sweeper(world).sweep()
    assert world.queue.sent["combine"] == []

    world.clock.advance(600)
    report = await sweeper(world).sweep()

    assert report.failed == []
    assert report.resumed == [job_id]
    assert world.queue.sent["combine"] == [CombineTask(job_id=job_id, indexes=(0, 1, 2, 3, 4))]
    await world.drain()
    assert (await world.store.view(job_id)).state == "done"
    world.clock.advance(600)
    assert (await sweeper(world).sweep()).resumed == []  # sent once


async def test_a_fan_in_that_never_claimed_is_claimed_and_sent_once_idle(world: World) -> None:
    # Every summary is stored, but the delivery that wrote the last failed to write the claim
    # and its message never came back (a twin had acked it).
    job_id, tasks = await researched(world)
    with claims_throttled(world, job_id):
        outcomes = await batch(world, tasks)
    assert sum(isinstance(o, StorageUnavailable) for o in outcomes) == 1
    assert (await world.store.view(job_id)).state == "summarizing"

    world.clock.advance(CLAIM_TIMEOUT_S + 1)
    report = await sweeper(world).sweep()

    assert report.resumed == [job_id]
    assert world.queue.take("combine") == [CombineTask(job_id=job_id, indexes=(0, 1, 2, 3, 4))]
    assert await world.store.combine_sent(job_id)
    # Its message, had it come back after all, finds the combine on its way.
    failed = next(t for t, o in zip(tasks, outcomes, strict=True) if o is not None)
    assert await batch(world, [failed]) == [None]
    assert world.queue.sent["combine"] == []


async def test_a_summarized_sources_dead_message_leaves_the_job_to_the_sweeper(
    world: World,
) -> None:
    # The claim's write kept failing until the message went to the DLQ: the summary is
    # stored, so the dead letter is kept and the job is not failed; the sweeper sends the
    # combine, and the report is written.
    job_id, tasks = await researched(world)
    with claims_throttled(world, job_id):
        outcomes = await batch(world, tasks)
    [dead] = [t for t, o in zip(tasks, outcomes, strict=True) if o is not None]

    body = dead.model_dump_json()
    assert await world.dead_letter().run(body, DLQ["summarize"], message_id="m") is None

    assert [d.job_id for _, d in await world.store.dead_messages()] == [job_id]
    assert (await world.store.view(job_id)).state == "summarizing"
    world.clock.advance(CLAIM_TIMEOUT_S + 1)
    assert (await sweeper(world).sweep()).resumed == [job_id]
    await world.drain()
    assert (await world.store.view(job_id)).state == "done"


async def test_an_unsummarized_sources_dead_message_still_fails_the_job(world: World) -> None:
    job_id, tasks = await researched(world)
    await world.dead_letter().run(tasks[2].model_dump_json(), DLQ["summarize"], message_id="m")
    view = await world.store.view(job_id)
    assert (view.state, view.reason) == (
        "failed",
        f"the summarize step for source 3 failed repeatedly and was given up; {UNSAID}",
    )
