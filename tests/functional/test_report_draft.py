"""A streaming combine model's text reaches the job's events as it is written (the report's
draft), and the report written at the end stays the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from brief.extractive import ExtractiveSummarizer
from brief.messages import CombineTask
from brief.models import Event
from brief.pipeline import Combine
from brief.ports import ModelText, OnModelRetry, OnText, SourceText

from .test_pipeline import researched
from .world import World

ANSWER = "Glaciers move downhill under their own weight [1]. Meltwater helps them slide [2]."


class StreamingModel(ExtractiveSummarizer):
    """Summarizes offline; combines like a model streaming `ANSWER` a word at a time, after a
    first attempt that fails half way when `restart` is set (a retried call starts over)."""

    def __init__(self, *, restart: bool = False) -> None:
        super().__init__()
        self.local_stages = frozenset({"summarize"})
        self.restart = restart

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        assert on_text is not None
        words = ANSWER.split(" ")
        if self.restart:
            for n in range(1, 4):
                await on_text("Glaciers are " + " ".join(["slow"] * n))
                await asyncio.sleep(0.03)
        for n in range(1, len(words) + 1):
            await on_text(" ".join(words[:n]))
            await asyncio.sleep(0.03)
        return ModelText(ANSWER)


async def events_of(world: World, job_id: str) -> list[Event]:
    return [e for _, e in await world.store.events(job_id)]


def draft_of(events: list[Event]) -> str:
    """What a reader of the events shows: each text added at its offset."""
    draft = ""
    for e in events:
        if e.kind == "report_text":
            assert e.text is not None
            assert e.offset is not None
            draft = draft[: e.offset] + e.text
    return draft


async def combined(world: World, model: StreamingModel, every_s: float) -> list[Event]:
    job_id, tasks = await researched(world)
    summarize = world.summarize()
    await asyncio.gather(*(summarize.run(t) for t in tasks))
    (task,) = world.queue.take("combine")
    assert isinstance(task, CombineTask)
    report = await Combine(world.store, model, draft_every_s=every_s).run(task)
    assert report is not None
    assert "Glaciers move downhill under their own weight [1]." in report.markdown
    return await events_of(world, job_id)


async def test_the_answer_reaches_the_events_as_the_model_writes_it(world: World) -> None:
    events = await combined(world, StreamingModel(), every_s=0.05)

    kinds = [e.kind for e in events]
    drafts = [e for e in events if e.kind == "report_text"]
    assert len(drafts) >= 2, kinds  # it grew in steps, not all at once
    assert kinds.index("combine_started") < kinds.index("report_text")
    assert kinds.index("report_text") < kinds.index("report_ready")
    assert max(i for i, k in enumerate(kinds) if k == "report_text") < kinds.index("report_ready")
    shown = draft_of(events)
    assert ANSWER.startswith(shown)  # the draft is the answer so far, never anything else
    assert len(shown) > len("Glaciers")


async def test_a_retried_call_starts_the_draft_over(world: World) -> None:
    events = await combined(world, StreamingModel(restart=True), every_s=0.02)

    drafts = [e for e in events if e.kind == "report_text"]
    assert drafts[0].offset == 0
    assert "slow" in (drafts[0].text or "")
    assert any(e.offset == 0 for e in drafts[1:])  # the second attempt starts again
    assert "slow" not in draft_of(events)


async def test_no_drafts_when_turned_off(world: World) -> None:
    events = await combined(world, StreamingModel(), every_s=0)
    assert "report_text" not in [e.kind for e in events]
