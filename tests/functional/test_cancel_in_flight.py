"""A cancel stops work already in flight: a slow page, a slow model call, a slow combine.

Each stage below is busy with something that would take `SLOW_S` when its job is cancelled.
It must return (its SQS record completes) well before that work would have ended, and
write nothing after the cancel: no source, summary, report or cache entry, and no event
after `job_cancelled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

import httpx

from brief.extractive import ExtractiveSummarizer
from brief.messages import CombineTask, ResearchTask, SummarizeTask
from brief.pipeline import Combine, Research, Summarize
from brief.ports import ModelText, OnModelRetry, OnText, SourceText
from brief.sources import Gatherer

from .test_pipeline import PARAGRAPHS, QUESTION
from .world import HOST, World, page

SLOW_S = 30.0  # how long the slow work would take
STOPPED_WITHIN_S = SLOW_S / 3  # generous: the stage's watcher looks every half second


class SlowModel:
    """The extractive model, except that one step takes `SLOW_S` (and notes being stopped)."""

    def __init__(self, slow: Literal["summarize", "combine"]) -> None:
        self.inner = ExtractiveSummarizer()
        self.slow = slow
        self.started = asyncio.Event()
        self.stopped = False

    @property
    def name(self) -> str:
        return "slow-model"

    async def _wait(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(SLOW_S)
        except asyncio.CancelledError:
            self.stopped = True
            raise

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        if self.slow == "summarize":
            await self._wait()
        return await self.inner.summarize(question, source)

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        if self.slow == "combine":
            await self._wait()
        return await self.inner.combine(question, summaries)


async def cancel_while(
    world: World, job_id: str, started: asyncio.Event, work: asyncio.Task[object]
) -> object:
    """Cancel the job once `work` is busy; what `work` returned, which it must do quickly."""
    await asyncio.wait_for(started.wait(), timeout=STOPPED_WITHIN_S)
    await world.intake().cancel(job_id, owner="alice")
    return await asyncio.wait_for(work, timeout=STOPPED_WITHIN_S)


async def kinds_of(world: World, job_id: str) -> list[str]:
    return [e.kind for _, e in await world.store.events(job_id)]


def written_since(world: World, job_id: str, before: set[str]) -> set[str]:
    """Every object written since `before`: a job's by its name there, an event by its kind."""
    names = set()
    for key in set(world.blobs.objects) - before:
        name = key.removeprefix(f"jobs/{job_id}/")
        names.add(name.split("-", 1)[1] if name.startswith("events/") else name)
    return names


CANCEL_WRITES = {"cancelled.json", "job_cancelled.json"}  # the marker and its event


async def test_a_cancel_stops_a_slow_page_and_research_stores_nothing_more(world: World) -> None:
    world.timeout_s = SLOW_S * 2  # the fetch would wait the page out
    started = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(SLOW_S)
        return httpx.Response(200, text=page("Late", *PARAGRAPHS[0]))

    world.routes["/slow.html"] = slow
    job_id = await world.submit(QUESTION, [f"http://{HOST}/slow.html"])
    (task,) = world.queue.take("intake")
    assert isinstance(task, ResearchTask)
    gatherer = Gatherer(world.adapters(), concurrency=8, deadline_s=SLOW_S * 2, clock=world.clock)
    research = Research(world.store, world.queue, gatherer, clock=world.clock)
    before = set(world.blobs.objects)

    done = await cancel_while(world, job_id, started, asyncio.create_task(research.run(task)))

    assert done is None  # returned normally: the record completes, it is not retried
    assert (await world.store.view(job_id)).state == "cancelled"
    assert await kinds_of(world, job_id) == ["job_created", "retrieval_started", "job_cancelled"]
    assert written_since(world, job_id, before) == {"retrieval_started.json", *CANCEL_WRITES}
    assert world.queue.sent["summarize"] == []


async def test_a_cancel_stops_a_slow_summary_and_nothing_is_written_for_it(world: World) -> None:
    job_id = await world.submit(QUESTION, [world.serve("/a.html", page("A", *PARAGRAPHS[0]))])
    await world.research().run(world.queue.take("intake")[0])  # type: ignore[arg-type]
    (task,) = world.queue.take("summarize")
    assert isinstance(task, SummarizeTask)
    model = SlowModel("summarize")
    stage = Summarize(world.store, world.queue, model, clock=world.clock)
    before = set(world.blobs.objects)

    done = await cancel_while(world, job_id, model.started, asyncio.create_task(stage.run(task)))

    assert done is None
    assert model.stopped  # the model call itself was stopped, not left running
    assert written_since(world, job_id, before) == CANCEL_WRITES  # no summary, no cache entry
    assert (await kinds_of(world, job_id))[-1] == "job_cancelled"
    assert world.queue.sent["combine"] == []


async def test_a_cancel_stops_a_slow_combine_and_no_report_is_written(world: World) -> None:
    urls = [world.serve(f"/{n}.html", page(f"P{n}", *PARAGRAPHS[n])) for n in range(2)]
    job_id = await world.submit(QUESTION, urls)
    await world.research().run(world.queue.take("intake")[0])  # type: ignore[arg-type]
    summarize = world.summarize()
    for task in world.queue.take("summarize"):
        await summarize.run(task)  # type: ignore[arg-type]
    (combine,) = world.queue.take("combine")
    assert isinstance(combine, CombineTask)
    model = SlowModel("combine")
    stage = Combine(world.store, model, clock=world.clock)
    before = set(world.blobs.objects)

    done = await cancel_while(world, job_id, model.started, asyncio.create_task(stage.run(combine)))

    assert done is None
    assert model.stopped
    assert written_since(world, job_id, before) == {"combine_started.json", *CANCEL_WRITES}
    assert (await kinds_of(world, job_id))[-2:] == ["combine_started", "job_cancelled"]
    assert (await world.store.view(job_id)).state == "cancelled"
