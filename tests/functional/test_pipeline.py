"""The stages together, on fakes: what a user of a job would see happen."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence

import httpx
import pytest
from pydantic import BaseModel

from brief import keys
from brief.deadletter import UNSAID
from brief.errors import RetryableError
from brief.extractive import ExtractiveSummarizer, split_sentences
from brief.messages import CombineTask, SummarizeTask
from brief.models import Report, SourceRecord
from brief.pipeline import Combine, Summarize, summary_input
from brief.ports import ModelText, OnModelRetry, OnText, SourceText

from .world import HOST, World, page

HOST_URL = f"http://{HOST}"

QUESTION = "Why do glaciers move downhill?"

PARAGRAPHS = [
    (
        "Glaciers move downhill because ice deforms under its own weight over long periods.",
        "The pressure of thick ice makes the crystals slowly slide past one another.",
        "Tourists often visit the glacier café on the northern side of the valley.",
    ),
    (
        "Meltwater at the base of a glacier lubricates the bed and lets the ice slide.",
        "In summer the sliding speed of many glaciers can double for several weeks.",
        "The gift shop sells postcards and warm hats to the hikers who pass by.",
    ),
    (
        "A glacier flows fastest at its surface centre and slowest along its bed and sides.",
        "Friction with the valley walls holds back the edges of the moving ice.",
        "Parking near the trailhead fills up quickly on sunny weekend mornings.",
    ),
    (
        "Soft sediment beneath a glacier can deform and carry the ice downhill with it.",
        "Scientists drill boreholes to measure how much of the motion happens in the bed.",
        "The visitor centre opens at nine and closes at five in the winter months.",
    ),
    (
        "Steeper slopes make glaciers move downhill faster because gravity pulls harder.",
        "Thicker ice also flows faster, since the stress at the bed grows with thickness.",
        "A small ferry crosses the lake at the foot of the glacier twice a day.",
    ),
]


def sent_combines(messages: list[BaseModel]) -> list[tuple[str, tuple[int, ...] | None]]:
    """The combine messages sent: each one's job and the summaries its fan-in saw."""
    return [(m.job_id, m.indexes) for m in messages if isinstance(m, CombineTask)]


async def five_sources(world: World) -> list[str]:
    return [
        world.serve(f"/page{i}.html", page(f"Glacier article {i}", *PARAGRAPHS[i]))
        for i in range(5)
    ]


async def researched(world: World) -> tuple[str, list[SummarizeTask]]:
    """A five-source job, retrieved: its id and the summarize messages research sent."""
    job_id = await world.submit(QUESTION, await five_sources(world))
    research = world.research()
    for task in world.queue.take("intake"):
        await research.run(task)  # type: ignore[arg-type]
    return job_id, [t for t in world.queue.take("summarize") if isinstance(t, SummarizeTask)]


async def report_of(world: World, job_id: str) -> Report:
    report = await world.store.report(job_id)
    assert report is not None, (await world.store.view(job_id)).model_dump()
    return report


async def test_five_source_job_ends_with_one_report_citing_every_source(world: World) -> None:
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()

    report = await report_of(world, job_id)
    assert [c.n for c in report.citations] == [1, 2, 3, 4, 5]
    assert [c.title for c in report.citations] == [f"Glacier article {i}" for i in range(5)]
    for n in range(1, 6):
        assert f"[{n}]" in report.markdown
    assert report.markdown.startswith(f"# {QUESTION}")
    assert report.missing == []
    markdown = world.blobs.objects[f"jobs/{job_id}/report.md"].decode()
    assert markdown == report.markdown
    assert "Copyright footer" not in markdown
    assert "About us" not in markdown
    view = await world.store.view(job_id)
    assert view.state == "done"
    assert view.summaries_done == view.summaries_expected == 5
    assert view.timings.total_ms is not None


async def test_a_job_with_max_sources_summarizes_that_many_and_lists_the_rest_as_skipped(
    world: World,
) -> None:
    urls = await five_sources(world)
    broken = world.serve("/broken.html", "")  # no text: it cannot be used
    job_id = await world.submit(QUESTION, [urls[0], broken, *urls[1:]], max_sources=3)
    await world.drain()

    report = await report_of(world, job_id)
    assert [c.n for c in report.citations] == [1, 3, 4]  # the first three that worked
    assert [(s.index, s.state) for s in report.missing] == [
        (1, "failed"),
        (4, "skipped"),
        (5, "skipped"),
    ]
    assert "- [5] http://pages.test/page3.html — not summarized: the job asked for at most 3 " in (
        report.markdown
    )
    assert len(world.fetched) == 6  # every source was still fetched, at once
    view = await world.store.view(job_id)
    assert view.summaries_done == view.summaries_expected == 3
    assert [s.state for s in view.sources] == ["ok", "failed", "ok", "ok", "skipped", "skipped"]


async def test_report_sentences_come_from_the_sources(world: World) -> None:
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()
    report = await report_of(world, job_id)
    # The answer (its lead and its findings), cut after each run of citations.
    answer = report.markdown.split("\n", 1)[1].split("## Sources", 1)[0]
    lines = [ln.removeprefix("- ") for ln in answer.splitlines() if ln and ln[0] not in "#>"]
    claims = [c.strip() for ln in lines for c in re.split(r"(?: \[\d+\])+", ln) if c.strip()]
    assert claims
    every_sentence = {s for group in PARAGRAPHS for s in group}
    for claim in claims:
        assert set(split_sentences(claim)) <= every_sentence


async def test_failed_sources_are_recorded_with_reasons_and_the_job_completes(
    world: World,
) -> None:
    world.timeout_s = 0.3
    world.max_bytes = 10_000
    good = [
        world.serve(f"/ok{i}.html", page(f"Glacier article {i}", *PARAGRAPHS[i])) for i in range(2)
    ]

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, text="too late")

    async def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 50_000, headers={"content-type": "text/plain"})

    world.routes["/slow"] = slow
    world.routes["/huge"] = huge
    urls = [*good, f"http://{HOST}/missing", f"http://{HOST}/slow", f"http://{HOST}/huge"]
    job_id = await world.submit(QUESTION, urls)
    await world.drain()

    report = await report_of(world, job_id)
    assert [c.url for c in report.citations] == good
    reasons = {s.url.rsplit("/", 1)[1]: s.reason or "" for s in report.missing}
    assert "404" in reasons["missing"]
    assert "timed out" in reasons["slow"]
    assert "too large" in reasons["huge"]
    assert "## Sources not used" in report.markdown
    view = await world.store.view(job_id)
    assert [s.state for s in view.sources] == ["ok", "ok", "failed", "failed", "failed"]


async def test_job_whose_sources_all_fail_ends_failed_with_the_reasons(world: World) -> None:
    urls = [f"http://{HOST}/gone{i}" for i in range(3)] + ["http://127.0.0.1/admin"]
    job_id = await world.submit(QUESTION, urls)
    await world.drain()

    view = await world.store.view(job_id)
    assert view.state == "failed"
    assert view.reason is not None
    assert view.reason.startswith("no source could be used")
    assert "404" in view.reason
    assert "not a public address" in view.reason
    assert await world.store.report(job_id) is None
    assert world.queue.sent["summarize"] == []


async def test_duplicate_and_simultaneous_summaries_send_exactly_one_combine(
    world: World,
) -> None:
    job_id, tasks = await researched(world)
    assert len(tasks) == 5
    summarize = world.summarize()
    # Every message twice, all at the same moment: SQS's at-least-once at its worst.
    outcomes = await asyncio.gather(
        *(summarize.run(t) for t in [*tasks, *tasks]),
        return_exceptions=True,
    )
    # A twin of the claim's winner cannot know whether the winner will send, so its message
    # comes back later (a retryable failure); by then the combine message is out.
    retried = [t for t, o in zip([*tasks, *tasks], outcomes, strict=True) if o is not None]
    assert all(isinstance(o, RetryableError) for o in outcomes if o is not None)
    assert len(retried) <= 1
    for task in retried:
        await summarize.run(task)
    # And a late redelivery after everything finished.
    await summarize.run(tasks[2])

    combines = world.queue.take("combine")
    assert sent_combines(combines) == [(job_id, (0, 1, 2, 3, 4))]
    combine = world.combine()
    first, second = await asyncio.gather(combine.run(combines[0]), combine.run(combines[0]))  # type: ignore[arg-type]
    assert first == second
    reports = [k for k in world.blobs.objects if k.endswith(("report.json", "report.md"))]
    assert len(reports) == 2
    events = [k for k in world.blobs.objects if "/events/" in k and "summary_done" in k]
    assert len(events) == 5


async def test_a_crash_between_claim_and_send_is_healed_by_the_redelivery(world: World) -> None:
    job_id, tasks = await researched(world)
    summarize = world.summarize()
    for task in tasks[:-1]:
        await summarize.run(task)

    real_send = world.queue.send
    calls = 0

    async def crash_once(role, messages):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("container died")
        await real_send(role, messages)

    world.queue.send = crash_once  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await summarize.run(tasks[-1])
    assert world.queue.sent["combine"] == []
    # SQS redelivers the message the crash left unacknowledged; while the claim is young
    # its owner might still be alive, so the message waits for another turn.
    with pytest.raises(RetryableError):
        await summarize.run(tasks[-1])
    world.clock.advance(61)
    await summarize.run(tasks[-1])
    await summarize.run(tasks[0])  # another straggler must not send a second one
    await summarize.run(tasks[-1])
    assert world.queue.take("combine") == [CombineTask(job_id=job_id, indexes=(0, 1, 2, 3, 4))]


async def test_research_redelivery_reuses_sources_already_stored(world: World) -> None:
    job_id = await world.submit(QUESTION, await five_sources(world))
    task = world.queue.take("intake")[0]
    await world.research().run(task)  # type: ignore[arg-type]
    fetched = len(world.fetched)
    # Simulate a crash before retrieval.json: remove it, and redeliver.
    del world.blobs.objects[f"jobs/{job_id}/retrieval.json"]
    world.queue.take("summarize")
    await world.research().run(task)  # type: ignore[arg-type]
    assert len(world.fetched) == fetched == 5
    assert len(world.queue.take("summarize")) == 5


async def test_a_source_a_twin_delivery_stored_first_is_retrieved_and_summarized_as_stored(
    world: World,
) -> None:
    # SQS hands the research message to two invocations at once. The twin's fetch of source 1
    # timed out and it stored that first; this one's fetch of it succeeded, and its write of
    # the source lost. What is stored is the source's outcome: the retrieval, the events
    # and the summarize messages say so too (they said "usable", and its summarize message
    # then failed every delivery: "job ... has no usable source 2").
    job_id = await world.submit(QUESTION, await five_sources(world))
    (task,) = world.queue.take("intake")
    real_put = world.blobs.put

    async def twin_first(key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        if key == keys.source(job_id, 1):
            record = SourceRecord.model_validate_json(body)
            failed = record.outcome.model_copy(update={"state": "failed", "reason": "timed out"})
            twin = record.model_copy(update={"outcome": failed, "text": ""})
            await real_put(key, twin.model_dump_json().encode(), content_type=content_type)
        return await real_put(key, body, content_type=content_type)

    world.blobs.put = twin_first  # type: ignore[method-assign]
    await world.research().run(task)  # type: ignore[arg-type]
    world.blobs.put = real_put  # type: ignore[method-assign]

    retrieval = await world.store.retrieval(job_id)
    assert retrieval is not None
    assert [s.index for s in retrieval.usable] == [0, 2, 3, 4]
    tasks = [t for t in world.queue.take("summarize") if isinstance(t, SummarizeTask)]
    assert sorted(t.index for t in tasks) == [0, 2, 3, 4]
    assert {t.expected for t in tasks} == {4}
    events = [(e.kind, e.index) for _, e in await world.store.events(job_id)]
    assert ("source_failed", 1) in events
    assert ("source_fetched", 1) not in events
    for summarize in tasks:
        await world.summarize().run(summarize)
    await world.drain()
    report = await report_of(world, job_id)
    assert [(m.index, m.reason) for m in report.missing] == [(1, "timed out")]


async def test_dead_letter_marks_the_job_failed_with_a_reason(world: World) -> None:
    job_id = await world.submit(QUESTION, await five_sources(world))
    body = SummarizeTask(job_id=job_id, index=3, expected=5).model_dump_json()
    marked = await world.dead_letter().run(body, "arn:aws:sqs:us-east-1:1:SummarizeDeadLetterQueue")
    assert marked == job_id
    view = await world.store.view(job_id)
    assert view.state == "failed"
    assert view.reason == (
        f"the summarize step for source 4 failed repeatedly and was given up; {UNSAID}"
    )


async def test_dead_letter_ignores_bodies_that_name_no_job(world: World) -> None:
    stage = world.dead_letter()
    assert await stage.run("not json", "arn") is None
    assert await stage.run(json.dumps({"job_id": "../../etc"}), "arn") is None
    assert await stage.run(json.dumps({"job_id": "a" * 32}), "arn") is None
    # Nothing is marked, but each is kept for an operator to see.
    assert all(k.startswith("dead/unknown/") for k in world.blobs.objects)
    assert len(world.blobs.objects) == 3


class CountingSummarizer:
    """The extractive model, counting how often it is really asked."""

    def __init__(self) -> None:
        self.inner = ExtractiveSummarizer()
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        self.calls += 1
        return await self.inner.summarize(question, source)

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        self.calls += 1
        return await self.inner.combine(question, summaries)


async def test_a_repeated_job_is_answered_from_the_cache_without_the_model(world: World) -> None:
    model = CountingSummarizer()
    world.summarize = lambda: Summarize(world.store, world.queue, model, clock=world.clock)  # type: ignore[method-assign]
    world.combine = lambda: Combine(world.store, model, clock=world.clock)  # type: ignore[method-assign]
    urls = await five_sources(world)
    first = await world.submit(QUESTION, urls)
    await world.drain()
    assert model.calls == 6  # five summaries and one combine

    second = await world.submit(QUESTION, urls)
    await world.drain()
    assert model.calls == 6
    summaries = await world.store.summaries(second, range(5))
    assert all(s.cached for s in summaries)
    assert (await report_of(world, second)).markdown == (await report_of(world, first)).markdown


async def test_a_combine_redelivered_after_its_markdown_write_failed_writes_it(
    world: World,
) -> None:
    # Found by `make chaos`: report.json was stored, the PUT of report.md failed (S3 503 on
    # every attempt), and the redelivery returned early: report.md was never written.
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()
    markdown = world.blobs.objects.pop(f"jobs/{job_id}/report.md")
    await world.combine().run(CombineTask(job_id=job_id))  # SQS brings the message back
    assert world.blobs.objects[f"jobs/{job_id}/report.md"] == markdown


async def test_summarize_messages_name_their_input_so_the_cache_is_read_with_the_source(
    world: World,
) -> None:
    job_id, tasks = await researched(world)
    for task in tasks:
        source = await world.store.source(job_id, task.index)
        assert source is not None
        assert task.input_digest == summary_input(QUESTION, source)


async def test_a_message_naming_another_input_still_gets_its_own_sources_summary(
    world: World,
) -> None:
    # A message whose digest names some other content (a bug, or a forged message) must not
    # be answered from that content's cache entry: the stage checks it against the source.
    model = CountingSummarizer()
    world.summarize = lambda: Summarize(world.store, world.queue, model, clock=world.clock)  # type: ignore[method-assign]
    urls = await five_sources(world)
    first = await world.submit(QUESTION, urls)
    await world.drain()
    calls = model.calls
    second = await world.submit(QUESTION, urls[1:2])
    research = world.research()
    for task in world.queue.take("intake"):
        await research.run(task)  # type: ignore[arg-type]
    (task,) = world.queue.take("summarize")
    other = await world.store.source(first, 3)
    assert other is not None
    forged = task.model_copy(update={"input_digest": summary_input(QUESTION, other)})
    await world.summarize().run(forged)  # type: ignore[arg-type]

    summary = await world.store.summary(second, 0)
    original = await world.store.summary(first, 1)
    assert summary is not None
    assert original is not None
    assert summary.cached
    assert summary.text == original.text
    assert model.calls == calls  # page 1's own entry answered, without the model


async def test_a_combine_reads_every_usable_summary_even_if_its_message_lists_fewer(
    world: World,
) -> None:
    job_id, tasks = await researched(world)
    summarize = world.summarize()
    for task in tasks:
        await summarize.run(task)
    assert sent_combines(world.queue.take("combine")) == [(job_id, (0, 1, 2, 3, 4))]

    report = await world.combine().run(CombineTask(job_id=job_id, indexes=(1, 3)))
    assert report is not None
    assert [c.index for c in report.citations] == [0, 1, 2, 3, 4]
    assert world.blobs.objects[f"jobs/{job_id}/report.md"] == report.markdown.encode()


class ScriptedCombine:
    """The extractive model for summaries; its combine answers with a set text."""

    def __init__(self, answer: str) -> None:
        self.inner = ExtractiveSummarizer()
        self.answer = answer

    @property
    def name(self) -> str:
        return "scripted-combine"

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        return await self.inner.summarize(question, source)

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        return ModelText(self.answer)


def combine_with(world: World, answer: str) -> None:
    model = ScriptedCombine(answer)
    world.combine = lambda: Combine(world.store, model, clock=world.clock)  # type: ignore[method-assign]


async def test_an_answer_that_cites_no_given_source_says_so_and_keeps_each_sources_summary(
    world: World,
) -> None:
    # Five sources; the model cites only numbers it was not given (or copied from a page).
    combine_with(world, "Ice deforms under its own weight [7], and meltwater helps [9][7].")
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()

    report = await report_of(world, job_id)
    uncited = (
        "The model's answer cites none of the sources it was given, so its claims cannot be "
        'traced to them; each source\'s summary, with its citation, is under "By source".'
    )
    removed = (
        "3 citations in the model's answer named no source it was given (numbers 7, 9) "
        "and were removed."
    )
    assert report.warnings == [removed, uncited]
    markdown = world.blobs.objects[f"jobs/{job_id}/report.md"].decode()
    assert markdown == report.markdown
    assert f"> **Note:** {uncited}" in markdown
    assert f"> **Note:** {removed}" in markdown
    assert "Ice deforms under its own weight, and meltwater helps." in markdown
    assert "[7]" not in markdown
    assert "[9]" not in markdown
    by_source = markdown.split("## By source", 1)[1].split("## Sources", 1)[0]
    for n in range(1, 6):
        assert f"**[{n}] Glacier article {n - 1}** — " in by_source
    assert PARAGRAPHS[0][0] in by_source  # the source's summary, under its citation
    view = await world.store.view(job_id)
    assert view.state == "done"
    assert view.warnings == [removed, uncited]


async def test_an_answer_with_some_invented_citations_says_how_many_were_removed(
    world: World,
) -> None:
    combine_with(world, "Ice deforms [1][12]. Meltwater lubricates the bed [2, 6].")
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()

    report = await report_of(world, job_id)
    removed = (
        "2 citations in the model's answer named no source it was given (numbers 6, 12) "
        "and were removed."
    )
    assert report.warnings == [removed]
    assert report.markdown == (
        f"# {QUESTION}\n\n> **Note:** {removed}\n\n"
        "Ice deforms [1]. Meltwater lubricates the bed [2].\n\n## Sources\n\n"
        + "".join(
            f"- [{n}] [Glacier article {n - 1}]({HOST_URL}/page{n - 1}.html)\n" for n in range(1, 6)
        )
    )
    assert (await world.store.view(job_id)).warnings == [removed]


async def test_a_well_cited_report_carries_no_warning(world: World) -> None:
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()
    report = await report_of(world, job_id)
    assert report.warnings == []
    assert "**Note:**" not in report.markdown
    assert (await world.store.view(job_id)).warnings == []


async def test_the_offline_summarizer_keeps_no_model_output_cache(world: World) -> None:
    # Its outputs take milliseconds to make again: a cache read and write per source (and per
    # combine) would cost more S3 round trips than the work they save.
    job_id = await world.submit(QUESTION, await five_sources(world))
    await world.drain()
    await report_of(world, job_id)
    assert not [k for k in world.blobs.objects if k.startswith("cache/texts/")]


async def test_a_summarize_message_carries_the_question_and_one_without_it_still_works(
    world: World,
) -> None:
    job_id, tasks = await researched(world)
    assert {t.question for t in tasks} == {QUESTION}
    # A message sent before the question rode along reads it from the request.
    older = [t.model_copy(update={"question": None}) for t in tasks]
    summarize = world.summarize()
    for task in older:
        await summarize.run(task)
    await world.drain()
    report = await report_of(world, job_id)
    assert [c.n for c in report.citations] == [1, 2, 3, 4, 5]
