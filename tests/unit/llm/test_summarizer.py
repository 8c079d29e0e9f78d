"""LLMSummarizer's budgets, rounds, citations and accounting, with in-memory models."""

from __future__ import annotations

import asyncio

import pytest

from brief.errors import PermanentError, RetryableError
from brief.llm import prompts
from brief.llm.chat import Completion, OnToken
from brief.llm.citations import cited
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.summarizer import TRUNCATED_REPORT, LLMSummarizer
from brief.llm.tokens import estimate_tokens
from brief.models import Usage
from brief.ports import SourceText
from brief_testing.fake_models import answer_for
from tests.unit.llm.chat_fakes import FakeChat, padding, pages
from tests.unit.llm.clock import VirtualTime

QUESTION = "How do scouts and quorum decide where a swarm moves?"
PRICES = PriceTable.from_json('{"fake:map": [1.0, 2.0], "fake:reduce": [3.0, 6.0]}')


async def no_sleep(_: float) -> None:
    return None


def summarizer(
    map_model: FakeChat, reduce_model: FakeChat | None = None, **kwargs: object
) -> LLMSummarizer:
    reduce_model = reduce_model or map_model
    options: dict[str, object] = {"max_output_tokens": 256, "sleep": no_sleep, **kwargs}
    return LLMSummarizer(
        map_model,
        reduce_model,
        limiter_map=RateLimiter(4),
        limiter_reduce=RateLimiter(4),
        prices=PRICES,
        **options,  # type: ignore[arg-type]
    )


def source(text: str, n: int = 1) -> SourceText:
    return SourceText(n=n, title=f"Swarm notes {n}", url=f"https://bees.test/{n}", text=text)


def usage_of(*models: FakeChat) -> Usage:
    total = Usage()
    for model in models:
        for call in model.calls:
            price = PRICES.price(model.name)
            assert price is not None
            total += Usage(
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                calls=1,
                cost_usd=price.cost(call.input_tokens, call.output_tokens),
            )
    return total


async def test_a_source_that_fits_takes_one_call_and_costs_what_it_used() -> None:
    model = FakeChat(name="fake:map")
    text = "Scouts inspect cavities. The quorum decides where the swarm moves. Honey is sweet."
    result = await summarizer(model).summarize(QUESTION, source(text))
    assert len(model.calls) == 1
    assert "quorum decides" in result.text
    assert result.usage == usage_of(model)
    assert result.usage.cost_usd > 0
    assert "<source>" in model.calls[0].prompt
    assert text in model.calls[0].prompt


async def test_a_long_source_is_chunked_merged_and_never_overflows_the_window() -> None:
    model = FakeChat(name="fake:map", context_tokens=4_096)
    document = pages(60)
    assert estimate_tokens(document) > 10 * 4_096
    result = await summarizer(model, max_rounds=4).summarize(QUESTION, source(document))
    assert result.text
    assert "Only part of this source" not in result.text
    assert all(c.input_tokens + c.max_tokens <= 4_096 for c in model.calls)
    assert result.usage == usage_of(model)
    chunk_calls = [c for c in model.calls if c.system == prompts.SUMMARIZE_SYSTEM]
    merge_calls = [c for c in model.calls if c.system == prompts.MERGE_SYSTEM]
    assert len(chunk_calls) > 10
    assert 1 <= len(merge_calls) <= len(chunk_calls)  # merging shrinks; it never multiplies
    assert "Part 1 of" in chunk_calls[0].prompt


async def test_a_model_that_never_shrinks_is_stopped_by_the_round_cap() -> None:
    model = FakeChat(name="fake:map", context_tokens=2_048, answer=padding)
    document = pages(30)
    result = await summarizer(model, max_output_tokens=256, max_rounds=2).summarize(
        QUESTION, source(document)
    )
    assert "Only part of this source could be summarized" in result.text
    chunks = len([c for c in model.calls if c.system == prompts.SUMMARIZE_SYSTEM])
    # Chunks, at most one merge round (round 1 is the chunks), and the final merge.
    assert len(model.calls) <= chunks + chunks // 2 + 1
    assert all(c.input_tokens + c.max_tokens <= 2_048 for c in model.calls)


async def test_a_source_longer_than_the_chunk_cap_is_summarized_in_part_with_a_note() -> None:
    model = FakeChat(name="fake:map", context_tokens=2_048)
    result = await summarizer(model, max_chunks=3).summarize(QUESTION, source(pages(20)))
    assert len([c for c in model.calls if c.system == prompts.SUMMARIZE_SYSTEM]) == 3
    assert "were left out" in result.text


async def test_combine_numbers_the_sources_and_leaves_invented_citations_to_the_stage() -> None:
    def invents(system: str, prompt: str, max_tokens: int) -> str:
        return "Scouts dance for sites [1]. The quorum decides [2][7]. Honey matters [1, 9]."

    model = FakeChat(name="fake:reduce", answer=invents)
    summaries = [
        source("Scouts dance for the sites they like best.", 1),
        source("A quorum of fifteen scouts at a site decides the move [12].", 2),
    ]
    result = await summarizer(model).combine(QUESTION, summaries)
    # The combine stage removes [7] and [9] and tells the report's reader it did.
    assert result.text == invents("", "", 0)
    prompt = model.calls[0].prompt
    assert "[1] Swarm notes 1 (https://bees.test/1)" in prompt
    assert "[12]" not in prompt  # a page's own footnote is not one of our sources
    assert result.usage == usage_of(model)


async def test_condensed_notes_keep_the_given_numbers_and_lose_an_invented_one() -> None:
    # Sources 1, 3 and 4 (source 2 was not used): the numbers have a gap, and a condensed
    # note that cites the missing number must not carry it into the answer's material.
    def invents_2(system: str, prompt: str, max_tokens: int) -> str:
        text = answer_for(system, prompt, max_tokens=max_tokens)[0]
        return f"{text} Scouts also sing [2]." if system == prompts.CONDENSE_SYSTEM else text

    model = FakeChat(name="fake:reduce", context_tokens=2_048, answer=invents_2)
    summaries = [source(pages(1, words_per_page=600), n) for n in (1, 3, 4)]
    result = await summarizer(model).combine(QUESTION, summaries)
    condensed = [c for c in model.calls if c.system == prompts.CONDENSE_SYSTEM]
    assert condensed, "three long summaries do not fit 2k tokens: they must be condensed"
    (final,) = [c for c in model.calls if c.system == prompts.COMBINE_SYSTEM]
    assert cited(final.prompt) == {1, 3, 4}
    assert "Scouts also sing." in final.prompt
    assert cited(result.text) <= {1, 3, 4}


async def test_sixty_summaries_collapse_in_capped_rounds_and_keep_their_citations() -> None:
    model = FakeChat(name="fake:reduce", context_tokens=4_096)
    summaries = [
        source(
            f"Source {n} reports that scouts favour cavity {n} and a quorum of {10 + n % 7} "
            f"scouts decides the move. It also notes that honey stores last {n % 9 + 2} days "
            "while the swarm waits in the open, and that piping warms the flight muscles.",
            n,
        )
        for n in range(1, 61)
    ]
    result = await summarizer(model, max_rounds=3).combine(QUESTION, summaries)
    assert all(c.input_tokens + c.max_tokens <= 4_096 for c in model.calls)
    condense = [c for c in model.calls if c.system == prompts.CONDENSE_SYSTEM]
    assert condense, "sixty summaries do not fit 4k tokens: they must be collapsed"
    assert len(model.calls) < 60
    given = set(range(1, 61))
    assert cited(result.text)
    assert cited(result.text) <= given
    assert result.usage == usage_of(model)
    assert result.usage.calls == len(model.calls)


async def test_combine_cuts_with_a_note_when_rounds_run_out() -> None:
    model = FakeChat(name="fake:reduce", context_tokens=2_048, answer=padding)
    # ~10k tokens of summaries: one round of condensing leaves ~7 notes of 256 tokens,
    # still more than the final call's room, and no second round is allowed.
    summaries = [
        source("Scouts favour dry cavities of forty litres, high above the ground. " * 7, n)
        for n in range(1, 101)
    ]
    result = await summarizer(model, max_rounds=1).combine(QUESTION, summaries)
    assert result.text.endswith(TRUNCATED_REPORT)
    condense = [c for c in model.calls if c.system == prompts.CONDENSE_SYSTEM]
    assert 5 <= len(condense) <= 10
    assert len(model.calls) == len(condense) + 1
    assert all(c.input_tokens + c.max_tokens <= 2_048 for c in model.calls)


async def test_usage_and_cost_are_summed_over_both_models() -> None:
    map_model = FakeChat(name="fake:map", context_tokens=4_096)
    reduce_model = FakeChat(name="fake:reduce", context_tokens=8_192)
    brief = summarizer(map_model, reduce_model)
    summary = await brief.summarize(QUESTION, source(pages(10)))
    report = await brief.combine(QUESTION, [source(summary.text)])
    assert summary.usage == usage_of(map_model)
    assert report.usage == usage_of(reduce_model)
    assert (summary.usage + report.usage).calls == len(map_model.calls) + len(reduce_model.calls)


async def test_a_permanent_failure_of_one_chunk_fails_the_source_and_stops_the_rest() -> None:
    model = FakeChat(name="fake:map", context_tokens=2_048)
    model.errors = [ModelRejected("fake:map refused the request (400): content filtered")]
    with pytest.raises(PermanentError, match="content filtered"):
        await summarizer(model).summarize(QUESTION, source(pages(20)))
    assert len(model.calls) < 20  # the other chunks were cancelled, not paid for


async def test_throttling_is_retried_after_the_shared_pause_and_only_the_answer_is_billed() -> None:
    model = FakeChat(name="fake:map")
    model.errors = [ModelRetryable("429", retry_after=2.0, throttled=True)]
    time = VirtualTime()
    limiter = RateLimiter(4, clock=time.clock, sleep=time.sleep)
    brief = LLMSummarizer(
        model,
        model,
        limiter_map=limiter,
        limiter_reduce=limiter,
        prices=PRICES,
        attempts=3,
        sleep=time.sleep,
    )
    result = await time.run(brief.summarize(QUESTION, source("Scouts inspect cavities.")))
    assert result.usage.calls == 1
    assert limiter.paused_until == 2.0
    assert time.now >= 2.0  # the retry came no sooner than Retry-After


async def test_retries_run_out_with_a_retryable_error_for_the_queue() -> None:
    model = FakeChat(name="fake:map")
    model.errors = [ModelRetryable("500") for _ in range(5)]
    with pytest.raises(RetryableError):
        await summarizer(model, attempts=3).summarize(QUESTION, source("Scouts inspect."))
    assert model.errors
    assert len(model.errors) == 2


async def test_a_window_too_small_for_the_prompt_is_a_clear_configuration_error() -> None:
    model = FakeChat(name="fake:map", context_tokens=1_024)
    with pytest.raises(ModelRejected, match="context window"):
        await summarizer(model, max_output_tokens=700).summarize(QUESTION, source("Scouts."))


def test_the_name_says_models_and_prompt_version_and_changes_with_settings() -> None:
    a = summarizer(FakeChat(name="openai:gpt-4o-mini"), FakeChat(name="anthropic:claude-x"))
    assert a.name.startswith(f"openai:gpt-4o-mini+anthropic:claude-x@{prompts.PROMPT_VERSION}.")
    b = summarizer(
        FakeChat(name="openai:gpt-4o-mini", context_tokens=16_000),
        FakeChat(name="anthropic:claude-x"),
    )
    c = summarizer(
        FakeChat(name="openai:gpt-4o-mini"),
        FakeChat(name="anthropic:claude-x"),
        max_output_tokens=512,
    )
    assert len({a.name, b.name, c.name}) == 3
    assert (
        a.name
        == summarizer(FakeChat(name="openai:gpt-4o-mini"), FakeChat(name="anthropic:claude-x")).name
    )


async def test_concurrent_chunk_calls_stay_within_the_limiter_bound() -> None:
    in_flight = 0
    most = 0

    class Slow(FakeChat):
        async def complete(
            self, system: str, prompt: str, *, max_tokens: int, on_token: OnToken | None = None
        ) -> Completion:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1
            return await super().complete(system, prompt, max_tokens=max_tokens)

    model = Slow(name="fake:map", context_tokens=2_048)
    await summarizer(model).summarize(QUESTION, source(pages(20)))
    assert most == 4


async def test_a_summary_too_long_to_condense_alone_is_cut_with_a_note() -> None:
    model = FakeChat(name="fake:reduce", context_tokens=2_048)
    huge = source(pages(10), 1)  # a summary written by a model with a far larger window
    result = await summarizer(model).combine(QUESTION, [huge, source("Scouts vote.", 2)])
    assert result.text.endswith(TRUNCATED_REPORT)
    assert all(c.input_tokens + c.max_tokens <= 2_048 for c in model.calls)
    assert len(model.calls) <= 3


async def test_follow_up_questions_come_from_the_combine_model_one_per_line() -> None:
    def planner(system: str, prompt: str, max_tokens: int) -> str:
        assert system == prompts.FOLLOW_UPS_SYSTEM
        assert "Research question: " + QUESTION in prompt
        return (
            "Here are some questions:\n"
            "1. How many scouts make a quorum?\n"
            "- What stops a swarm from splitting between two sites?\n"
            "2) How many scouts make a quorum?\n"
            "Why do scouts stop dancing"  # not a question line: left out
        )

    map_model = FakeChat(name="fake:map")
    reduce_model = FakeChat(name="fake:reduce", answer=planner)
    questions, usage = await summarizer(map_model, reduce_model).follow_ups(
        QUESTION, "What is known about quorum?", ["Scouts sense a quorum of 20 to 30 bees [2]."], 3
    )

    assert questions == [
        "How many scouts make a quorum?",
        "What stops a swarm from splitting between two sites?",
    ]
    assert not map_model.calls
    assert "[2]" not in reduce_model.calls[0].prompt  # its own citations mean nothing here
    assert usage == usage_of(reduce_model)
