"""The two baselines Brief is measured against, over the same loopback servers.

`sequential` does one step after another (the naive script); `gathered` is the seed's
in-process pipeline: every fetch at once, every summary at once (asyncio.gather), one
combine. Both speak the same OpenAI-compatible API to the same fake models as Brief does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from bench.fixtures import MAP_MODEL, REDUCE_MODEL


async def _fetch(http: httpx.AsyncClient, url: str) -> str:
    response = await http.get(url)
    response.raise_for_status()
    return response.text


async def _complete(http: httpx.AsyncClient, base_url: str, model: str, prompt: str) -> str:
    response = await http.post(
        f"{base_url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}]},
        headers={"Authorization": "Bearer bench"},
    )
    response.raise_for_status()
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def _summary_prompt(question: str, n: int, text: str) -> str:
    return f"Question: {question}\n[{n}] source\n<source>\n{text}\n</source>"


def _combine_prompt(question: str, summaries: Sequence[str]) -> str:
    notes = "\n\n".join(f"[{n}] source\n{s}" for n, s in enumerate(summaries, start=1))
    return f"Question: {question}\n<notes>\n{notes}\n</notes>"


async def sequential(question: str, urls: Sequence[str], model_url: str) -> float:
    """Fetch, summarize and combine one step at a time; seconds taken."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        texts = [await _fetch(http, u) for u in urls]
        summaries = [
            await _complete(http, model_url, MAP_MODEL, _summary_prompt(question, n, t))
            for n, t in enumerate(texts, start=1)
        ]
        await _complete(http, model_url, REDUCE_MODEL, _combine_prompt(question, summaries))
    return time.perf_counter() - started


async def gathered(question: str, urls: Sequence[str], model_url: str) -> float:
    """Every fetch at once, every summary at once, then one combine; seconds taken."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        texts = await asyncio.gather(*(_fetch(http, u) for u in urls))
        summaries = await asyncio.gather(
            *(
                _complete(http, model_url, MAP_MODEL, _summary_prompt(question, n, t))
                for n, t in enumerate(texts, start=1)
            )
        )
        await _complete(http, model_url, REDUCE_MODEL, _combine_prompt(question, summaries))
    return time.perf_counter() - started


async def _complete_retrying(
    http: httpx.AsyncClient, base_url: str, model: str, prompt: str, retries: int
) -> str:
    """`_complete`, retrying a 429 after the Retry-After it names, like the OpenAI SDK does
    (which retries twice by default)."""
    for attempt in range(retries + 1):
        response = await http.post(
            f"{base_url}/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": prompt}]},
            headers={"Authorization": "Bearer bench"},
        )
        if response.status_code == 429 and attempt < retries:
            await asyncio.sleep(float(response.headers.get("retry-after") or 1.0))
            continue
        response.raise_for_status()
        text: str = response.json()["choices"][0]["message"]["content"]
        return text
    raise AssertionError("unreachable")


async def gathered_retrying(
    question: str, urls: Sequence[str], model_url: str, *, retries: int
) -> float | None:
    """The seed's gather pipeline with `retries` per model call; seconds, or None if it failed
    (a 429 past its retries ends the whole job, as an exception out of gather does)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        try:
            texts = await asyncio.gather(*(_fetch(http, u) for u in urls))
            summaries = await asyncio.gather(
                *(
                    _complete_retrying(
                        http, model_url, MAP_MODEL, _summary_prompt(question, n, t), retries
                    )
                    for n, t in enumerate(texts, start=1)
                )
            )
            await _complete_retrying(
                http, model_url, REDUCE_MODEL, _combine_prompt(question, summaries), retries
            )
        except httpx.HTTPStatusError:
            return None
    return time.perf_counter() - started
