"""The model layer end to end over HTTP against the fake model server: a 200-page document
and 60 summaries within the round cap, citations, accounting, and fan-out under faults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from brief.llm import prompts
from brief.llm.anthropic import AnthropicChat
from brief.llm.citations import cited
from brief.llm.config import ModelConfig, StageConfig
from brief.llm.factory import build_summarizer
from brief.llm.openai import OpenAIChat
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.summarizer import LLMSummarizer
from brief.llm.tokens import estimate_tokens
from brief.pipeline import check_answer
from brief.ports import SourceText
from brief_testing.fake_models import FakeModelServer, Faults
from tests.unit.llm.chat_fakes import pages

QUESTION = "How do scouts and the quorum decide where a swarm moves?"
WINDOW = 4_096
PRICES = '{"openai:map-model": [0.15, 0.60], "anthropic:reduce-model": [0.80, 4.00]}'


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelServer]:
    windows = {"map-model": WINDOW, "reduce-model": WINDOW}
    with FakeModelServer(context_tokens=windows) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(server: FakeModelServer) -> None:
    server.reset()
    server.faults = Faults()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
        yield client


def build(
    server: FakeModelServer, http: httpx.AsyncClient, *, concurrency: int = 8, **kwargs: object
) -> LLMSummarizer:
    map_model = OpenAIChat(
        http, model="map-model", context_tokens=WINDOW, base_url=server.url + "/v1"
    )
    reduce_model = AnthropicChat(
        http, model="reduce-model", context_tokens=WINDOW, api_key="k", base_url=server.url
    )
    options: dict[str, object] = {"max_output_tokens": 512, "retry_base_s": 0.01, **kwargs}
    return LLMSummarizer(
        map_model,
        reduce_model,
        limiter_map=RateLimiter(concurrency),
        limiter_reduce=RateLimiter(concurrency),
        prices=PriceTable.from_json(PRICES),
        **options,  # type: ignore[arg-type]
    )


async def test_a_200_page_document_is_summarized_within_the_round_cap(
    server: FakeModelServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    document = pages(200)
    assert estimate_tokens(document) > 30 * WINDOW
    brief = build(server, http, max_rounds=4, max_chunks=128)
    with caplog.at_level(logging.INFO, logger="brief.llm.summarizer"):
        result = await brief.summarize(
            QUESTION, SourceText(1, "Field notes", "https://bees.test/1", document)
        )
    done = next(r for r in caplog.records if r.getMessage() == "model summarize done")
    assert 2 <= done.rounds <= 4  # type: ignore[attr-defined]

    stats = server.stats
    assert stats.statuses == {200: stats.completed}, "no request overflowed the window"
    assert stats.max_prompt_tokens + 512 <= WINDOW
    assert "Only part of this source" not in result.text
    assert "scouts" in result.text
    # Accounting: what the layer reports is exactly what the provider billed.
    assert result.usage.calls == stats.completed
    assert result.usage.input_tokens == stats.input_tokens
    assert result.usage.output_tokens == stats.output_tokens
    expected_cost = (stats.input_tokens * 0.15 + stats.output_tokens * 0.60) / 1_000_000
    assert result.usage.cost_usd == pytest.approx(expected_cost, abs=1e-7)
    # Chunks, then at most max_rounds - 1 merge rounds, then one final merge: a bounded bill.
    chunks = stats.completed - 1
    assert 30 < chunks < 128 * 2


async def test_sixty_summaries_are_combined_within_the_round_cap_citing_only_them(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    summaries = [
        SourceText(
            n,
            f"Report {n}",
            f"https://bees.test/{n}",
            f"Source {n} finds that scouts favour cavity {n} of {20 + n} litres and that a "
            f"quorum of {10 + n % 9} scouts decides where the swarm moves. Piping before "
            f"liftoff lasts about {n % 5 + 1} minutes, and the swarm flies {n * 40} metres. "
            "Scouts that find poorer sites dance for less time, so their support fades.",
        )
        for n in range(1, 61)
    ]
    server.set_faults(invent_citation=0.5, seed=3)  # a model that cites sources it was not given
    brief = build(server, http, max_rounds=3)
    result = await brief.combine(QUESTION, summaries)

    stats = server.stats
    assert stats.statuses == {200: stats.completed}
    assert stats.invented > 0
    # Condensing drops the markers it invents (one an answer, in about half the answers):
    # only the final answer's can remain, and the combine stage removes it and says so.
    invented = cited(result.text) - set(range(1, 61))
    assert len(invented) <= 1
    body, warnings = check_answer(result.text, summaries)
    assert cited(body), "the report cites its sources"
    assert cited(body) <= set(range(1, 61)), "and only the sources it was given"
    expected = [
        f"1 citation in the model's answer named no source it was given (number {n}) "
        "and was removed."
        for n in invented
    ]
    assert [w for w in warnings if "named no source" in w] == expected


async def test_fan_out_under_429s_500s_and_cut_streams_still_completes(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.faults = Faults(
        rate_limit=0.15, retry_after_s=0.01, server_error=0.05, cut_stream=0.05, seed=11
    )
    brief = build(server, http, attempts=8)
    sources = [
        SourceText(i, f"Notes {i}", f"https://bees.test/{i}", pages(1 + i % 3))
        for i in range(1, 21)
    ]
    results = await asyncio.gather(*(brief.summarize(QUESTION, s) for s in sources))
    stats = server.stats
    assert all(r.text for r in results)
    assert stats.statuses[429] + stats.statuses[500] + stats.cut > 0
    # Failed attempts are not billed by the provider and not counted by the layer.
    assert sum(r.usage.calls for r in results) == stats.completed
    assert sum(r.usage.output_tokens for r in results) == stats.output_tokens


async def test_the_concurrency_bound_keeps_a_fan_out_under_the_providers_limit(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.faults = Faults(max_concurrent=4)
    server.latency_s["*"] = 0.02
    try:
        brief = build(server, http, concurrency=4)
        sources = [SourceText(i, None, f"https://bees.test/{i}", pages(8)) for i in range(1, 9)]
        # Eight sources at once share one limiter, as the records of one SQS batch do.
        await asyncio.gather(*(brief.summarize(QUESTION, s) for s in sources))
    finally:
        server.latency_s.pop("*")
    stats = server.stats
    assert stats.statuses[429] == 0
    assert stats.max_in_flight <= 4
    assert stats.completed > 8


async def test_the_factory_builds_a_working_summarizer_from_settings(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    config = ModelConfig(
        summarize=StageConfig(
            provider="openai",
            model="map-model",
            base_url=server.url + "/v1",
            context_tokens=WINDOW,
            max_output_tokens=256,
        ),
        combine=StageConfig(
            provider="anthropic",
            model="reduce-model",
            base_url=server.url,
            api_key="k",
            context_tokens=WINDOW,
        ),
        prices=PRICES,
    )
    brief = await build_summarizer(config, http=http)
    summary = await brief.summarize(
        QUESTION, SourceText(1, "Notes", "https://bees.test/1", pages(2))
    )
    report = await brief.combine(
        QUESTION, [SourceText(1, "Notes", "https://bees.test/1", summary.text)]
    )
    assert cited(report.text) == {1}
    assert (summary.usage + report.usage).calls == server.stats.completed
    assert server.stats.by_api == {"openai": summary.usage.calls, "anthropic": report.usage.calls}
    assert prompts.PROMPT_VERSION in brief.name
