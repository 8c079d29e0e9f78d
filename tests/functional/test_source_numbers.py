"""A source has one number, its index + 1, wherever a person reads it: the report's
citations and source lists, the events, the CLI's status, and what the model is given.

A job of four sources whose second cannot be fetched is the case that used to differ: the
report renumbered the three it used 1, 2, 3, while the status and events called them 1, 3, 4.
"""

from __future__ import annotations

import re

import pytest

from brief.errors import InvalidMessage
from brief.llm import prompts
from brief.llm.citations import cited
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.summarizer import LLMSummarizer
from brief.messages import SummarizeTask
from brief.models import Report
from brief.pipeline import Combine, Summarize
from brief_cli.cli import format_view
from brief_testing.fake_models import answer_for
from tests.unit.llm.chat_fakes import FakeChat

from .world import HOST, World, page

QUESTION = "Why do glaciers move downhill?"
# Source k's sentences (None: source 2, which answers 404).
PARAGRAPHS: dict[int, tuple[str, ...]] = {
    1: (
        "Glaciers move downhill because ice deforms under its own weight over long periods.",
        "The pressure of thick ice makes the crystals slowly slide past one another.",
    ),
    3: (
        "Meltwater at the base of a glacier lubricates the bed and lets the ice slide downhill.",
        "In summer the sliding speed of many glaciers can double for several weeks.",
    ),
    4: (
        "Soft sediment beneath a glacier can deform and carry the ice downhill with it.",
        "Scientists drill boreholes to measure how much of the motion happens in the bed.",
    ),
}
MISSING = f"http://{HOST}/missing"


async def four_sources_the_second_missing(world: World) -> str:
    """Submit the job and run it to its end: its id."""
    urls = [
        world.serve(f"/page{k}.html", page(f"Glacier article {k}", *PARAGRAPHS[k]))
        if k in PARAGRAPHS
        else MISSING
        for k in range(1, 5)
    ]
    job_id = await world.submit(QUESTION, urls)
    await world.drain()
    return job_id


def section(markdown: str, heading: str) -> list[str]:
    """The non-empty lines under `## heading`, up to the next heading."""
    body = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


async def report_of(world: World, job_id: str) -> Report:
    report = await world.store.report(job_id)
    assert report is not None, (await world.store.view(job_id)).model_dump()
    return report


async def test_the_report_numbers_each_source_as_the_status_and_events_do(world: World) -> None:
    job_id = await four_sources_the_second_missing(world)

    report = await report_of(world, job_id)
    assert [(c.n, c.index) for c in report.citations] == [(1, 0), (3, 2), (4, 3)]
    assert section(report.markdown, "Sources") == [
        f"- [{k}] [Glacier article {k}](http://{HOST}/page{k}.html)" for k in (1, 3, 4)
    ]
    view = await world.store.view(job_id)
    reason = view.sources[1].reason
    assert reason is not None
    assert "404" in reason
    assert section(report.markdown, "Sources not used") == [f"- [2] {MISSING} — {reason}"]
    # Each finding cites the source it was taken from, by that source's number.
    findings = [line for line in section(report.markdown, "Findings") if line.startswith("- ")]
    assert findings
    for line in findings:
        sentence, numbers = re.fullmatch(r"- (.+?) ((?:\[\d\])+)", line).groups()  # type: ignore[union-attr]
        assert [sentence in PARAGRAPHS[n] for n in cited(numbers)] == [True]
    assert cited(report.markdown.split("## Sources", 1)[0]) == {1, 3, 4}

    # The status and the events call the same sources by the same numbers.
    status = format_view(view.model_dump(mode="json")).splitlines()
    assert [line.split()[0] for line in status if line.startswith("  [")] == [
        "[1]",
        "[2]",
        "[3]",
        "[4]",
    ]
    assert f"  [2] failed  {MISSING} — {reason}" in status
    events = [(e.kind, e.index) for _, e in await world.store.events(job_id) if e.index is not None]
    assert ("source_failed", 1) in events  # shown as [2]: index + 1
    assert {i for kind, i in events if kind == "summary_done"} == {0, 2, 3}
    # A summarize message for it (a forged or stray one) fails its record naming it so too.
    stray = SummarizeTask(job_id=job_id, index=1, expected=3)
    with pytest.raises(InvalidMessage, match=f"^job {job_id} has no usable source 2$"):
        await world.summarize().run(stray)


def with_model(world: World, model: FakeChat) -> None:
    """The world's summarize and combine on an LLM summarizer over `model`."""
    summarizer = LLMSummarizer(
        model,
        model,
        limiter_map=RateLimiter(4),
        limiter_reduce=RateLimiter(4),
        prices=PriceTable.from_json(""),
        max_output_tokens=256,
    )
    world.summarize = lambda: Summarize(  # type: ignore[method-assign]
        world.store, world.queue, summarizer, claim_timeout_s=60, clock=world.clock
    )
    world.combine = lambda: Combine(world.store, summarizer, clock=world.clock)  # type: ignore[method-assign]


def cites_and_invents_source_2(system: str, prompt: str, max_tokens: int) -> str:
    """The fake model's answer (which cites the numbers its material is given under), plus
    a claim that cites source 2, which the combine was never given."""
    text = answer_for(system, prompt, max_tokens=max_tokens)[0]
    if system == prompts.COMBINE_SYSTEM:
        text += " Glaciers also sing at night [2]."
    return text


async def test_a_models_answer_keeps_the_numbers_it_was_given_and_loses_one_it_was_not(
    world: World,
) -> None:
    model = FakeChat(name="fake:chat", answer=cites_and_invents_source_2)
    with_model(world, model)
    job_id = await four_sources_the_second_missing(world)

    (combine,) = [c for c in model.calls if c.system == prompts.COMBINE_SYSTEM]
    given = re.findall(r"^\[(\d+)\] Glacier article (\d+) ", combine.prompt, re.M)
    assert given == [("1", "1"), ("3", "3"), ("4", "4")]  # each under its own number

    report = await report_of(world, job_id)
    answer = report.markdown.split("## Sources", 1)[0]
    assert cited(answer) == {1, 3, 4}
    assert "[3]" in answer
    assert "Glaciers also sing at night." in answer  # the claim stays; its citation does not
    assert report.warnings == [
        "1 citation in the model's answer named no source it was given (number 2) and was removed."
    ]
    assert [c.n for c in report.citations] == [1, 3, 4]
    assert section(report.markdown, "Sources not used")[0].startswith(f"- [2] {MISSING} — ")
