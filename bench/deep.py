"""Deep research on the local stack, against the same tree walked in-process.

`python -m bench.deep` (and `make bench`, scenario 9) runs a depth-2 job with the seed's
latencies (fetch 1 s, summarize 3 s, combine 2 s) and a web search that answers in
`SEARCH_S`: its level 1 reads two sample pages, and each follow-up question is a search whose
results are read at level 2. The same tree, its questions and the pages Brief read for each,
is then walked in-process twice: one step after another (`sequential`), and one
`asyncio.gather` per level (`gathered`: every level-1 page fetched and summarized at once,
then the combine model asked for the follow-up questions, as Brief asks it, then every
follow-up searched, fetched and summarized at once, then one combine). The tree
is run at breadth 1 and at breadth 3: a tree's wall time should grow with its depth, not its
size.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.baselines import _combine_prompt, _complete, _fetch, _summary_prompt
from bench.fixtures import MAP_MODEL, QUESTION, REDUCE_MODEL, SEED, Servers, serving
from bench.jobs import run_one
from brief_local.stack import LocalStack
from brief_testing.fake_services import FakeServices

Figures = dict[str, Any]

SEARCH_S = 0.5
"""How long the fake web search takes to answer."""


class SlowSearch(FakeServices):
    """The samples' SearXNG-compatible search, answering after `latency_s`, its result URLs
    carrying `suffix` (the page server's delay, and the run's tag)."""

    def __init__(self, pages_url: str, latency_s: float) -> None:
        super().__init__(pages_url)
        self.latency_s = latency_s
        self.suffix = ""

    def search(self, query: str) -> list[dict[str, Any]]:
        """The results, late, pointing at delayed pages."""
        time.sleep(self.latency_s)
        results = super().search(query)
        for result in results:
            result["url"] = f"{result['url']}?{self.suffix}"
        return results


@dataclass(frozen=True)
class Walk:
    """A deep job's tree as an in-process walk replays it."""

    question: str
    first: list[str]  # level 1's pages
    follow_ups: list[tuple[str, list[str]]]  # each level-2 question and the pages read for it


async def sequential(walk: Walk, model_url: str, search_url: str) -> float:
    """The tree one step after another; seconds taken."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        summaries = [
            await _summarize(http, model_url, walk.question, n, await _fetch(http, u))
            for n, u in enumerate(walk.first, start=1)
        ]
        await _ask_follow_ups(http, model_url, walk, summaries)
        for question, urls in walk.follow_ups:
            await _search(http, search_url, question)
            for url in urls:
                text = await _fetch(http, url)
                summaries.append(await _summarize(http, model_url, question, len(summaries), text))
        await _complete(http, model_url, REDUCE_MODEL, _combine_prompt(walk.question, summaries))
    return time.perf_counter() - started


async def gathered(walk: Walk, model_url: str, search_url: str) -> float:
    """One `asyncio.gather` per level, then one combine; seconds taken."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:

        async def read(question: str, n: int, url: str) -> str:
            return await _summarize(http, model_url, question, n, await _fetch(http, url))

        async def follow(question: str, urls: list[str]) -> list[str]:
            await _search(http, search_url, question)
            return list(await asyncio.gather(*(read(question, n, u) for n, u in enumerate(urls))))

        first = await asyncio.gather(
            *(read(walk.question, n, u) for n, u in enumerate(walk.first, start=1))
        )
        await _ask_follow_ups(http, model_url, walk, first)
        later = await asyncio.gather(*(follow(q, urls) for q, urls in walk.follow_ups))
        summaries = [*first, *(s for found in later for s in found)]
        await _complete(http, model_url, REDUCE_MODEL, _combine_prompt(walk.question, summaries))
    return time.perf_counter() - started


async def _summarize(
    http: httpx.AsyncClient, model_url: str, question: str, n: int, text: str
) -> str:
    return await _complete(http, model_url, MAP_MODEL, _summary_prompt(question, n, text))


async def _ask_follow_ups(
    http: httpx.AsyncClient, model_url: str, walk: Walk, summaries: list[str]
) -> None:
    """The combine model's follow-up questions on level 1's summaries: Brief asks for them
    (one call for the root, the only node of level 1) before it searches."""
    prompt = f"Follow-up questions, one per line.\n{_combine_prompt(walk.question, summaries)}"
    await _complete(http, model_url, REDUCE_MODEL, prompt)


async def _search(http: httpx.AsyncClient, search_url: str, query: str) -> None:
    answer = await http.get(f"{search_url}/search", params={"q": query, "format": "json"})
    answer.raise_for_status()


async def deep_tree(search_s: float = SEARCH_S) -> Figures:
    """Scenario 9: a depth-2 tree through Brief at breadth 1 and 3, and breadth 3's tree
    walked in-process, sequentially and gathered per level."""
    with serving(SEED) as servers:
        search = SlowSearch(servers.pages.url, search_s)
        search.start()
        try:
            return await _measure(servers, search)
        finally:
            search.stop()


async def _measure(servers: Servers, search: SlowSearch) -> Figures:
    options = servers.stack_options()
    options.environment = {
        **options.environment,
        "BRIEF_SEARCH_PROVIDER": "searxng",
        "BRIEF_SEARXNG_URL": search.url,
    }
    runs: dict[int, Figures] = {}
    walk: Walk | None = None
    async with (
        LocalStack(options) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api,
    ):
        for breadth in (1, 1, 3):  # the first run warms every function
            tag = secrets.token_hex(4)
            search.suffix = f"delay={SEED.fetch_s:g}&run={tag}"
            question = f"{QUESTION} (bench deep {tag})"
            first = servers.sources(tag, count=2)
            job = await run_one(
                api, question, first, timeout_s=180, options={"depth": 2, "breadth": breadth}
            )
            view = (await api.get(f"/jobs/{job.job_id}")).raise_for_status().json()
            runs[breadth] = {
                "job_id": job.job_id,
                "state": view["state"],
                "seconds": job.duration_s,
                "questions": len(view.get("tree") or []),
                "documents": sum(1 for s in view["sources"] if s["state"] in ("ok", "cached")),
            }
            if breadth == 3:
                walk = _walk(question, first, view)
    assert walk is not None
    sequential_s = await sequential(walk, servers.models.url, search.url)
    gathered_s = await gathered(walk, servers.models.url, search.url)
    brief_s = runs[3]["seconds"]
    narrow_s = runs[1]["seconds"]
    return {
        "latencies": {**vars(SEED), "search_s": search.latency_s},
        "depth": 2,
        "brief": runs,
        "sequential_s": sequential_s,
        "gathered_s": gathered_s,
        "brief_over_gathered": brief_s / gathered_s if brief_s else None,
        "sequential_over_brief": sequential_s / brief_s if brief_s else None,
        "breadth3_over_breadth1": brief_s / narrow_s if brief_s and narrow_s else None,
    }


def _walk(question: str, first: list[str], view: Figures) -> Walk:
    """The tree Brief grew, as the pages it read for each question."""
    url = {s["index"]: s["url"] for s in view["sources"]}
    follow_ups = [
        (node["question"], [url[i] for i in node["sources"]])
        for node in view.get("tree") or []
        if node["level"] == 2
    ]
    return Walk(question, first, follow_ups)


def describe(figures: Figures) -> str:
    """The scenario's lines for the bench's table."""
    runs = figures["brief"]
    return (
        f"9. Deep research, depth 2 (search {figures['latencies']['search_s']:g} s): Brief "
        f"{runs[3]['seconds']:.2f} s for {runs[3]['questions']} questions and "
        f"{runs[3]['documents']} documents (breadth 3), {runs[1]['seconds']:.2f} s for "
        f"{runs[1]['questions']} and {runs[1]['documents']} (breadth 1); the same tree "
        f"in-process: gathered per level {figures['gathered_s']:.2f} s, sequential "
        f"{figures['sequential_s']:.2f} s"
    )


def main() -> int:
    """Run the scenario alone and print it (and its JSON)."""
    figures = asyncio.run(deep_tree())
    print(describe(figures))
    print(json.dumps(figures, indent=2, default=str))
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "deep.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
