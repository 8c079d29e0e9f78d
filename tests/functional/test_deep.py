"""Deep research: a bounded tree of follow-up questions, level by level through the queues,
on fakes (pages behind a mock transport, a keyword search over them)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from brief import keys
from brief.errors import PermanentError, StorageUnavailable
from brief.extractive import ExtractiveSummarizer
from brief.messages import CombineTask, ResearchTask, SummarizeTask
from brief.models import LevelPlan, Report, ResearchRequest, TreeNode, Usage
from brief.pipeline import Combine, Summarize
from brief.ports import ModelText, OnModelRetry, SearchHit, SourceText
from brief.sources import SourceAdapters

from .world import HOST, World, page

QUESTION = "Why do glaciers move downhill?"

# A small web on one topic: the job's own two pages, and pages only a search finds, each
# on a theme the first pages raise (basal sliding, meltwater, crevasses, moraines, surges).
PAGES = {
    "/start/flow.html": (
        "How glaciers flow",
        "Glaciers move downhill because ice deforms under its own weight.",
        "Basal sliding over meltwater adds to the motion where the bed is wet.",
        "Crevasses open where the ice surface stretches as it flows.",
    ),
    "/start/speed.html": (
        "Glacier speed",
        "Steeper glaciers move downhill faster because gravity pulls harder on the ice.",
        "Basal sliding can double a glacier's speed in summer when meltwater reaches the bed.",
        "Crevasses show where the glacier speeds up and the surface cracks.",
    ),
    "/found/sliding.html": (
        "Basal sliding explained",
        "Basal sliding happens when a film of water separates ice from bedrock.",
        "Water pressure at the bed lifts the ice and reduces friction.",
    ),
    "/found/meltwater.html": (
        "Meltwater under ice",
        "Meltwater drains through moulins down to the glacier bed.",
        "In summer meltwater pressure peaks and the ice slides fastest.",
    ),
    "/found/crevasses.html": (
        "Why crevasses form",
        "Crevasses form where the ice is stretched faster than it can deform.",
        "Crevasses are usually no deeper than about thirty metres.",
    ),
    "/found/surges.html": (
        "Glacier surges",
        "Some glaciers surge, moving ten to a hundred times faster for months.",
        "Surges follow a build-up of water at the bed.",
    ),
}
START = ["/start/flow.html", "/start/speed.html"]


class KeywordSearch:
    """A web search over `PAGES`: the pages sharing the most words with the query."""

    name = "fake"

    def __init__(self, paths: Sequence[str] | None = None) -> None:
        self.paths = list(paths) if paths is not None else list(PAGES)
        self.queries: list[str] = []

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.queries.append(query)
        await asyncio.sleep(0)
        wanted = set(query.lower().split())
        scored = []
        for path in self.paths:
            words = set(" ".join(PAGES[path]).lower().replace(".", " ").split())
            if shared := len(wanted & words):
                scored.append((-shared, path))
        return [
            SearchHit(url=f"http://{HOST}{p}", title=PAGES[p][0]) for _, p in sorted(scored)[:limit]
        ]


def deep_world(world: World, search: KeywordSearch) -> list[str]:
    """Serve the pages and plug the search in; the job's own URLs."""
    for path, (title, *paragraphs) in PAGES.items():
        world.serve(path, page(title, *paragraphs))
    base = world.adapters()
    world.adapters = lambda: SourceAdapters(  # type: ignore[method-assign]
        fetcher=base.fetcher, search={"fake": search}, default_search="fake"
    )
    return [f"http://{HOST}{p}" for p in START]


async def reported(
    world: World, search: KeywordSearch | None = None, **options: Any
) -> tuple[str, Report, list[TreeNode]]:
    """A deep job from the two start pages, run to its end: its id, report and tree."""
    urls = deep_world(world, search or KeywordSearch())
    job_id = await world.submit(QUESTION, urls, **options)
    await world.drain()
    report = await world.store.report(job_id)
    assert report is not None
    assert report.tree is not None
    return job_id, report, report.tree


async def test_a_depth_two_job_asks_follow_ups_reads_what_they_find_and_reports_once(
    world: World,
) -> None:
    search = KeywordSearch()
    job_id, report, tree = await reported(world, search, depth=2, breadth=2)
    root, *follow_ups = tree
    assert (root.node, root.level, root.sources) == ("1", 1, [0, 1])
    assert [(f.node, f.parent, f.level) for f in follow_ups] == [("2.1", "1", 2), ("2.2", "1", 2)]
    assert all(f.question.startswith("What is known about") for f in follow_ups)
    # The follow-ups' searches read new pages, indexed after the job's own sources, and the
    # report stands on both levels.
    later = [i for f in follow_ups for i in f.sources]
    assert later
    assert min(later) >= 2
    cited = {c.index for c in report.citations}
    assert cited & {0, 1}
    assert cited & set(later)
    assert "## Questions followed" in report.markdown
    assert "- 2.1 What is known about" in report.markdown
    # No page of the first level is read again for a follow-up.
    assert world.fetched.count(f"http://{HOST}/start/flow.html") == 1
    # The status shows the tree and every level's sources; the events say the level started.
    view = await world.store.view(job_id)
    assert view.state == "done"
    assert view.tree == report.tree
    assert [s.index for s in view.sources][:2] == [0, 1]
    assert len(view.sources) > 2
    kinds = [e.kind for _, e in await world.store.events(job_id)]
    assert kinds.count("level_started") == 1
    assert kinds.count("report_ready") == 1


async def test_every_message_delivered_twice_makes_one_plan_per_level_and_one_report(
    world: World,
) -> None:
    search = KeywordSearch()
    urls = deep_world(world, search)
    job_id = await world.submit(QUESTION, urls, depth=3, breadth=2)
    while any(world.queue.sent.values()):
        research, summarize, combine = world.research(), world.summarize(), world.combine()
        intake = world.queue.take("intake") * 2
        summaries = world.queue.take("summarize") * 2
        combines = world.queue.take("combine") * 2
        for task in intake:
            assert isinstance(task, ResearchTask)
            await research.run(task)
        outcomes = await asyncio.gather(
            *(summarize.run(t) for t in summaries if isinstance(t, SummarizeTask)),
            return_exceptions=True,
        )
        assert all(o is None for o in outcomes), outcomes
        for task in combines:
            assert isinstance(task, CombineTask)
            await asyncio.gather(combine.run(task), return_exceptions=True)
        world.clock.advance(11)  # a twin's terminal event is past its grace period

    report = await world.store.report(job_id)
    assert report is not None
    assert report.tree is not None
    levels = [n.level for n in report.tree]
    assert levels.count(1) == 1
    assert 1 <= levels.count(2) <= 2  # one plan per level: never the twin's questions too
    plans = [k for k in world.blobs.objects if k.endswith("/plan.json")]
    assert len(plans) == len(set(levels)) - 1
    events = [e.kind for _, e in await world.store.events(job_id)]
    assert events.count("report_ready") == 1
    assert events.count("level_started") == len(plans)


async def test_the_document_limit_stops_the_tree_and_the_report_says_why(world: World) -> None:
    _, report, tree = await reported(world, depth=2, max_sources=2)
    assert len(tree) == 1
    assert any("stopped at level 1 of 2" in w and "max_sources is 2" in w for w in report.warnings)
    assert "stopped at level 1 of 2" in report.markdown


async def test_the_time_budget_stops_the_tree_before_its_next_level(world: World) -> None:
    urls = deep_world(world, KeywordSearch())
    job_id = await world.submit(QUESTION, urls, depth=3, max_seconds=10)
    research = world.research()
    for task in world.queue.take("intake"):
        await research.run(task)  # type: ignore[arg-type]
    world.clock.advance(11)  # the level took longer than the job may
    await world.drain()

    report = await world.store.report(job_id)
    assert report is not None
    assert any("its time ran out" in w and "max_seconds is 10" in w for w in report.warnings)
    assert not any(k.endswith("/plan.json") for k in world.blobs.objects)


class PricedSummarizer(ExtractiveSummarizer):
    """The extractive summarizer, as if each call cost a cent."""

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        text = await super().summarize(question, source)
        return ModelText(text.text, Usage(calls=1, cost_usd=0.01))


async def test_the_cost_budget_stops_the_tree_once_the_model_cost_reaches_it(
    world: World,
) -> None:
    model = PricedSummarizer()
    world.summarize = lambda: Summarize(world.store, world.queue, model, clock=world.clock)  # type: ignore[method-assign]
    _, report, tree = await reported(world, depth=2, max_cost_usd=0.02)
    assert any("model cost reached $0.0200" in w for w in report.warnings)
    assert len(tree) == 1


async def test_follow_ups_that_find_nothing_new_still_end_in_a_report(world: World) -> None:
    search = KeywordSearch(START)  # the search knows only the pages the job already read
    _, report, tree = await reported(world, search, depth=2, breadth=2)
    assert search.queries  # the follow-ups were searched for
    assert any("found nothing new" in w for w in report.warnings)
    assert {c.index for c in report.citations} == {0, 1}
    assert all(n.sources == [] for n in tree[1:])
    assert "(nothing found)" in report.markdown


async def test_a_crash_between_the_plan_and_its_send_is_healed_by_the_redelivery(
    world: World,
) -> None:
    urls = deep_world(world, KeywordSearch())
    job_id = await world.submit(QUESTION, urls, depth=2, breadth=2)
    research, summarize = world.research(), world.summarize()
    for task in world.queue.take("intake"):
        await research.run(task)  # type: ignore[arg-type]
    await asyncio.gather(*(summarize.run(t) for t in world.queue.take("summarize")))  # type: ignore[arg-type]
    [combine_task] = world.queue.take("combine")
    real_send = world.queue.send

    async def down(role: str, messages: Sequence[object]) -> None:
        raise StorageUnavailable("SQS is down")

    world.queue.send = down  # type: ignore[method-assign]
    real_put = world.blobs.put

    async def no_events(key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        if "/events/" in key:
            raise StorageUnavailable("S3 is down")
        return await real_put(key, body, content_type=content_type)

    world.blobs.put = no_events  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        await world.combine().run(combine_task)  # type: ignore[arg-type]
    world.queue.send = real_send  # type: ignore[method-assign]
    world.blobs.put = real_put  # type: ignore[method-assign]
    plan = world.blobs.objects[keys.plan(job_id, 2)]

    await world.combine().run(combine_task)  # type: ignore[arg-type]  # SQS brings it back
    assert world.blobs.objects[keys.plan(job_id, 2)] == plan  # the same questions
    assert [t.model_dump() for t in world.queue.sent["intake"]] == [
        ResearchTask(job_id=job_id, level=2).model_dump()
    ]
    await world.drain()
    report = await world.store.report(job_id)
    assert report is not None
    # The level's event, lost with the first delivery, was written by the redelivery, once.
    kinds = [e.kind for _, e in await world.store.events(job_id)]
    assert kinds.count("level_started") == 1
    stored = LevelPlan.model_validate_json(plan)
    assert report.tree is not None
    assert [n.question for n in report.tree[1:]] == [f.question for f in stored.follow_ups]


class PlanningSummarizer(PricedSummarizer):
    """A priced model that also proposes follow-up questions (or fails to, for good)."""

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.asked: list[tuple[str, str, int]] = []

    async def follow_ups(
        self, root: str, question: str, notes: Sequence[str], count: int
    ) -> tuple[list[str], Usage]:
        self.asked.append((root, question, count))
        if self.refuse:
            raise PermanentError("the model refused the request (400)")
        return ["How does basal sliding depend on meltwater?"][:count], Usage(
            calls=1, cost_usd=0.005
        )


async def test_a_model_that_can_asks_the_follow_ups_and_its_cost_is_counted(
    world: World,
) -> None:
    model = PlanningSummarizer()
    world.summarize = lambda: Summarize(world.store, world.queue, model, clock=world.clock)  # type: ignore[method-assign]
    world.combine = lambda: Combine(world.store, model, queue=world.queue, clock=world.clock)  # type: ignore[method-assign]
    urls = deep_world(world, KeywordSearch())
    job_id = await world.submit(QUESTION, urls, depth=2, breadth=2)
    await world.drain()

    assert model.asked == [(QUESTION, QUESTION, 2)]
    report = await world.store.report(job_id)
    assert report is not None
    assert report.tree is not None
    assert [n.question for n in report.tree[1:]] == ["How does basal sliding depend on meltwater?"]
    assert report.stage_usage["follow_ups"].cost_usd == 0.005
    summarized = report.stage_usage["summarize"].cost_usd
    assert report.usage.cost_usd == pytest.approx(summarized + 0.005)


async def test_a_model_that_cannot_ask_leaves_the_questions_to_the_offline_way(
    world: World,
) -> None:
    model = PlanningSummarizer(refuse=True)
    world.combine = lambda: Combine(world.store, model, queue=world.queue, clock=world.clock)  # type: ignore[method-assign]
    _, _, tree = await reported(world, depth=2, breadth=2)
    assert len(tree) == 3
    assert all(n.question.startswith("What is known about") for n in tree[1:])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"depth": 0}, "greater than or equal to 1"),
        ({"depth": 4}, "less than or equal to 3"),
        ({"breadth": 7}, "less than or equal to 6"),
        ({"max_cost_usd": 0}, "greater than 0"),
        ({"max_seconds": 5}, "greater than or equal to 10"),
    ],
)
def test_a_tree_out_of_bounds_is_refused_with_the_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ResearchRequest.model_validate({"question": QUESTION, "sources": START, **fields})
    assert message in str(caught.value)


def test_a_plain_job_is_depth_one() -> None:
    request = ResearchRequest.model_validate({"question": QUESTION, "sources": ["https://a.test/"]})
    assert (request.depth, request.breadth) == (1, 3)
