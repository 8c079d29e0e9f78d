"""What the model layer costs per call, measured against the fake server at zero latency.

Three ways to make the same streamed chat-completions request, interleaved in rotating
order so drift hits all alike: a raw `httpx` POST that only reads the bytes;
`OpenAIChat.complete` (SSE parsing, JSON per chunk, usage); and `LLMSummarizer.summarize`
of a source that fits in one call (prompt building, token estimates, rate limiter, retry
wrapper, pricing, adapter). Run with `-s` to see the numbers:

    .venv/bin/python -m pytest tests/integration/test_llm_overhead.py -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from brief.llm import prompts
from brief.llm.openai import OpenAIChat
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.summarizer import LLMSummarizer
from brief.ports import SourceText
from brief_testing.fake_models import FakeModelServer

CALLS = 200
WARM_UP = 20
QUESTION = "How does a swarm choose its new home?"
TEXT = (
    "Scouts inspect cavities for days and report what they find with waggle dances. "
    "A swarm chooses its new home when a quorum of about fifteen scouts gathers at one site. "
    "Piping then warms the flight muscles, and the swarm lifts off within the hour. "
) * 6


async def test_the_model_layer_adds_little_time_per_call() -> None:
    source = SourceText(1, "Swarm notes", "https://bees.test/1", TEXT)
    max_tokens = 256
    with FakeModelServer() as server:
        async with httpx.AsyncClient() as http:
            chat = OpenAIChat(http, model="m", context_tokens=8_192, base_url=server.url + "/v1")
            layer = LLMSummarizer(
                chat,
                chat,
                limiter_map=RateLimiter(8, rpm=100_000, tpm=100_000_000),
                limiter_reduce=RateLimiter(8),
                prices=PriceTable.from_json('{"openai:m": [0.15, 0.6]}'),
                max_output_tokens=max_tokens,
            )
            prompt = prompts.summarize_prompt(
                QUESTION, source, TEXT, part=None, words=prompts.words_for(max_tokens)
            )
            body = {
                "model": "m",
                "messages": [
                    {"role": "system", "content": prompts.SUMMARIZE_SYSTEM},
                    {"role": "user", "content": prompt},
                ],
                "max_tokens": max_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            url = server.url + "/v1/chat/completions"

            async def raw() -> None:
                response = await http.post(url, json=body)
                assert response.status_code == 200

            async def adapter() -> None:
                await chat.complete(prompts.SUMMARIZE_SYSTEM, prompt, max_tokens=max_tokens)

            async def whole_layer() -> None:
                await layer.summarize(QUESTION, source)

            ways: dict[str, Callable[[], Awaitable[None]]] = {
                "raw httpx POST": raw,
                "OpenAIChat.complete": adapter,
                "LLMSummarizer.summarize": whole_layer,
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            order = list(ways.items())
            for round_no in range(WARM_UP + CALLS):
                order = order[1:] + order[:1]  # rotate, so no way always goes first
                for name, way in order:
                    started = time.perf_counter()
                    await way()
                    if round_no >= WARM_UP:
                        times[name].append((time.perf_counter() - started) * 1000)
            answer = await chat.complete(prompts.SUMMARIZE_SYSTEM, prompt, max_tokens=max_tokens)

    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["raw httpx POST"]
    print(
        f"\nmedian of {CALLS} sequential calls, zero model latency, {answer.output_tokens} "
        f"output tokens streamed as {len(answer.text.split())} SSE chunks:"
    )
    for name, value in median.items():
        print(f"  {name:<26} {value:6.2f} ms   ({value - base:+.2f} ms vs raw)")
    # Generous bounds: this guards against a regression (a per-call client, a sleep, an
    # O(n^2) parse), not against a slow CI machine.
    assert median["LLMSummarizer.summarize"] - base < 10.0
    assert median["LLMSummarizer.summarize"] < 5 * base + 10.0
