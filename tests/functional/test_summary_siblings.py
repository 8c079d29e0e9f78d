"""Summaries of one job that SQS delivers in one batch share a read of the cancel marker and
one fan-in, and still send exactly one combine whatever fails or comes back."""

from __future__ import annotations

import asyncio
from collections import Counter

from brief import keys
from brief.adapters.memory import MemoryBlobStore
from brief.errors import RetryableError
from brief.messages import CombineTask, SummarizeTask
from brief.pipeline import Combine, Summarize

from .test_pipeline import CountingSummarizer, researched
from .world import World


class CountingBlobs(MemoryBlobStore):
    """The memory store, counting listings and reads by key."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: Counter[str] = Counter()
        self.read: Counter[str] = Counter()

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        self.listed[prefix] += 1
        return await super().list(prefix, after=after)

    async def get(self, key: str) -> bytes | None:
        self.read[key] += 1
        return await super().get(key)


async def batch(world: World, tasks: list[SummarizeTask]) -> list[BaseException | None]:
    """One SQS batch: the stage built for it, every record at once."""
    stage = world.summarize().for_batch(tasks)
    return await asyncio.gather(*(stage.run(t) for t in tasks), return_exceptions=True)


async def test_a_jobs_summaries_in_one_batch_list_and_claim_once_and_send_one_combine(
    world: World,
) -> None:
    world.blobs = counting = CountingBlobs()
    job_id, tasks = await researched(world)
    counting.listed.clear()

    assert await batch(world, tasks) == [None] * 5

    [combine] = world.queue.take("combine")
    assert isinstance(combine, CombineTask)
    assert (combine.job_id, combine.indexes) == (job_id, (0, 1, 2, 3, 4))
    # The batch wrote every summary: nothing to list, and they ride along to the combine.
    assert counting.listed[keys.summaries(job_id)] == 0
    assert [s.index for s in combine.summaries or ()] == [0, 1, 2, 3, 4]
    assert counting.read[keys.cancelled(job_id)] == 1
    # Research handed each its source: none is read.
    assert not any(counting.read[keys.source(job_id, t.index)] for t in tasks)
    # Their progress events are one object, read back as one event each.
    assert sum("summary_done" in k for k in world.blobs.objects) == 1
    events = await world.store.events(job_id)
    assert sorted(e.index or 0 for _, e in events if e.kind == "summary_done") == [0, 1, 2, 3, 4]


async def test_a_sibling_that_fails_leaves_the_fan_in_to_its_redelivery(world: World) -> None:
    job_id, tasks = await researched(world)
    failing = tasks[3]
    real_put = world.blobs.put

    async def flaky_put(key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        if key == keys.summary(job_id, failing.index):
            raise RetryableError("S3 throttled the write")
        return await real_put(key, body, content_type=content_type)

    world.blobs.put = flaky_put  # type: ignore[method-assign]
    outcomes = await batch(world, tasks)
    assert [type(o).__name__ for o in outcomes] == ["NoneType"] * 3 + ["RetryableError", "NoneType"]
    assert world.queue.sent["combine"] == []  # four summaries of five: no combine yet

    world.blobs.put = real_put  # type: ignore[method-assign]
    assert await batch(world, [failing]) == [None]
    [combine] = world.queue.take("combine")
    assert isinstance(combine, CombineTask)
    assert (combine.job_id, combine.indexes) == (job_id, (0, 1, 2, 3, 4))
    # It wrote one summary of five (the listing found the others): that one rides along.
    assert [s.index for s in combine.summaries or ()] == [failing.index]


async def test_a_crash_between_claim_and_send_is_healed_by_the_redelivery_in_a_batch(
    world: World,
) -> None:
    job_id, tasks = await researched(world)
    real_send = world.queue.send

    async def container_dies(role, messages):  # type: ignore[no-untyped-def]
        raise ConnectionError("container died")

    world.queue.send = container_dies  # type: ignore[method-assign]
    outcomes = await batch(world, tasks)
    crashed = [t for t, o in zip(tasks, outcomes, strict=True) if o is not None]
    assert len(crashed) == 1  # the one sibling that ran the fan-in, and claimed
    world.queue.send = real_send  # type: ignore[method-assign]

    # Its redelivery comes back beside a duplicate of a sibling: while the claim is young its
    # owner may be alive, so it waits; after the claim's timeout it sends, once.
    other = next(t for t in tasks if t != crashed[0])
    retried = await batch(world, [other, crashed[0]])
    assert retried[0] is None
    assert isinstance(retried[1], RetryableError)
    world.clock.advance(61)
    assert await batch(world, [other, crashed[0]]) == [None, None]
    assert await batch(world, tasks) == [None] * 5  # late duplicates send nothing more
    assert world.queue.take("combine") == [CombineTask(job_id=job_id, indexes=(0, 1, 2, 3, 4))]


async def test_two_jobs_in_one_batch_each_get_their_own_combine(world: World) -> None:
    first, first_tasks = await researched(world)
    second, second_tasks = await researched(world)
    mixed = [t for pair in zip(first_tasks, second_tasks, strict=True) for t in pair]

    assert await batch(world, [*mixed, *mixed]) == [None] * 20  # every message twice

    sent = world.queue.take("combine")
    assert sorted(t.job_id for t in sent) == sorted([first, second])  # type: ignore[attr-defined]


async def test_a_first_delivery_with_a_model_does_not_look_for_its_summary_or_report(
    world: World,
) -> None:
    # SQS's receive count 1: no earlier delivery wrote anything, so the reads that look for
    # it are skipped; a duplicate still writes nothing twice (its conditional writes lose).
    model = CountingSummarizer()
    world.blobs = counting = CountingBlobs()
    job_id, tasks = await researched(world)
    summarize = Summarize(world.store, world.queue, model, clock=world.clock).for_batch(tasks)
    await asyncio.gather(*(summarize.run(t, first=True) for t in tasks))
    [combine] = world.queue.take("combine")
    assert isinstance(combine, CombineTask)
    report = await Combine(world.store, model, clock=world.clock).run(combine, first=True)

    assert report is not None
    assert not any(counting.read[keys.summary(job_id, t.index)] for t in tasks)
    assert counting.read[keys.report(job_id)] == 0
    assert model.calls == 6

    # A duplicate of the first delivery (SQS may deliver one twice, both as the first):
    # the model works again, but nothing is written twice and no second combine is sent.
    await Summarize(world.store, world.queue, model, clock=world.clock).run(tasks[0], first=True)
    assert world.queue.take("combine") == []
    assert sum("summary_done" in k for k in world.blobs.objects) == 1
    # A redelivery looks first and finds it: no model call.
    calls = model.calls
    await Summarize(world.store, world.queue, model, clock=world.clock).run(tasks[1])
    assert model.calls == calls
