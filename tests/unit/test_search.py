"""Web search providers over httpx.MockTransport: what a user sees of each API's answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from brief.adapters.search import BraveSearch, SearxngSearch, TavilySearch
from brief.errors import SourceError
from brief.ports import SearchHit, SearchProvider

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class Api:
    """One provider: how to build it and how its API wraps a list of results."""

    name: str
    make: Callable[[httpx.AsyncClient], SearchProvider]
    snippet_key: str
    wrap: Callable[[list[dict[str, Any]]], dict[str, Any]]

    def answer(self, *results: tuple[str, str, str]) -> dict[str, Any]:
        return self.wrap(
            [{"url": url, "title": title, self.snippet_key: text} for url, title, text in results]
        )


SEARXNG = Api(
    "searxng",
    lambda client: SearxngSearch(client, "http://searx.test/", retry_delay_s=0),
    "content",
    lambda results: {"query": "q", "number_of_results": len(results), "results": results},
)
BRAVE = Api(
    "brave",
    lambda client: BraveSearch(client, "brave-key", retry_delay_s=0),
    "description",
    lambda results: {"type": "search", "web": {"type": "search", "results": results}},
)
TAVILY = Api(
    "tavily",
    lambda client: TavilySearch(client, "tvly-key", retry_delay_s=0),
    "content",
    lambda results: {"query": "q", "results": results, "response_time": 0.5},
)
APIS = [SEARXNG, BRAVE, TAVILY]

RESULTS = [
    ("https://bees.example/swarms", "How swarms choose", "Scouts dance for sites."),
    ("https://bees.example/quorum", "Quorum sensing", "Scouts count each other."),
    ("https://bees.example/stop", "Stop signals", "Head butts end a dance."),
]


class Recorder:
    """A MockTransport that answers with `responses` in turn and keeps every request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.requests: list[httpx.Request] = []
        self._responses: Iterator[httpx.Response | Exception] = iter(responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = next(self._responses)
        if isinstance(response, Exception):
            raise response
        return response

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


async def search(
    api: Api, recorder: Recorder, query: str = "how do bees swarm", limit: int = 5
) -> list[SearchHit]:
    async with recorder.client() as client:
        return await api.make(client).search(query, limit=limit)


@pytest.fixture(params=APIS, ids=lambda api: api.name)
def api(request: pytest.FixtureRequest) -> Api:
    assert isinstance(request.param, Api)
    return request.param


# Success


async def test_results_come_back_best_first_with_title_and_snippet(api: Api) -> None:
    recorder = Recorder(httpx.Response(200, json=api.answer(*RESULTS)))

    hits = await search(api, recorder)

    assert hits == [SearchHit(url, title, text) for url, title, text in RESULTS]


async def test_each_provider_has_the_name_a_request_selects_it_by(api: Api) -> None:
    async with Recorder().client() as client:
        assert api.make(client).name == api.name


async def test_the_limit_is_honoured(api: Api) -> None:
    recorder = Recorder(httpx.Response(200, json=api.answer(*RESULTS)))

    hits = await search(api, recorder, limit=2)

    assert [h.url for h in hits] == [RESULTS[0][0], RESULTS[1][0]]


async def test_only_web_urls_are_kept_and_duplicates_dropped(api: Api) -> None:
    answer = api.answer(
        ("javascript:alert(1)", "Bad", "x"),
        ("ftp://files.example/bees.txt", "FTP", "x"),
        ("file:///etc/passwd", "File", "x"),
        ("https://", "No host", "x"),
        ("https://bees.example/swarms", "Swarms", "x"),
        ("https://bees.example/swarms", "Swarms again", "x"),
        ("http://plain.example/", "Plain", "x"),
    )
    answer_with_junk = json.loads(
        json.dumps(answer).replace('"results": [', '"results": [7, {"title": "no url"}, ')
    )
    recorder = Recorder(httpx.Response(200, json=answer_with_junk))

    hits = await search(api, recorder)

    assert [h.url for h in hits] == ["https://bees.example/swarms", "http://plain.example/"]


async def test_no_results_is_an_empty_list(api: Api) -> None:
    recorder = Recorder(httpx.Response(200, json=api.answer()))

    assert await search(api, recorder) == []


async def test_a_limit_of_zero_asks_nothing(api: Api) -> None:
    recorder = Recorder()

    assert await search(api, recorder, limit=0) == []
    assert recorder.requests == []


async def test_an_empty_query_is_refused_without_asking(api: Api) -> None:
    recorder = Recorder()

    with pytest.raises(SourceError) as caught:
        await search(api, recorder, query="  \n ")

    assert caught.value.reason == "the search query is empty"
    assert recorder.requests == []


# The requests each API documents


async def test_searxng_asks_for_json_at_its_search_path() -> None:
    recorder = Recorder(httpx.Response(200, json=SEARXNG.answer()))

    await search(SEARXNG, recorder, query="how do  bees swarm")

    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.copy_with(query=None) == "http://searx.test/search"
    assert dict(request.url.params) == {"q": "how do bees swarm", "format": "json"}


async def test_brave_sends_its_token_and_a_count() -> None:
    recorder = Recorder(httpx.Response(200, json=BRAVE.answer()))

    await search(BRAVE, recorder, limit=50)

    (request,) = recorder.requests
    assert request.url.copy_with(query=None) == "https://api.search.brave.com/res/v1/web/search"
    assert dict(request.url.params) == {"q": "how do bees swarm", "count": "20"}
    assert request.headers["X-Subscription-Token"] == "brave-key"
    assert request.headers["Accept"] == "application/json"


async def test_tavily_posts_the_query_with_a_bearer_key() -> None:
    recorder = Recorder(httpx.Response(200, json=TAVILY.answer()))

    await search(TAVILY, recorder, limit=3)

    (request,) = recorder.requests
    assert (request.method, str(request.url)) == ("POST", "https://api.tavily.com/search")
    assert request.headers["Authorization"] == "Bearer tvly-key"
    assert json.loads(request.content) == {"query": "how do bees swarm", "max_results": 3}


@pytest.mark.parametrize("api", [BRAVE, TAVILY], ids=["brave", "tavily"])
async def test_a_long_question_is_cut_to_the_length_the_api_accepts(api: Api) -> None:
    recorder = Recorder(httpx.Response(200, json=api.answer()))

    await search(api, recorder, query="swarm " * 100)

    request = recorder.requests[0]
    sent = (
        request.url.params["q"] if request.method == "GET" else json.loads(request.content)["query"]
    )
    assert len(sent) <= 400
    assert sent.endswith("swarm")


async def test_brave_highlighting_markup_is_removed() -> None:
    answer = BRAVE.answer(
        (
            "https://bees.example/",
            "Why <strong>bees</strong> swarm",
            "Scouts &amp; <strong>quorums</strong>",
        )
    )
    recorder = Recorder(httpx.Response(200, json=answer))

    (hit,) = await search(BRAVE, recorder)

    assert (hit.title, hit.snippet) == ("Why bees swarm", "Scouts & quorums")


async def test_brave_without_web_results_is_an_empty_list() -> None:
    recorder = Recorder(httpx.Response(200, json={"type": "search", "query": {"original": "q"}}))

    assert await search(BRAVE, recorder) == []


# Failures


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("api", [BRAVE, TAVILY], ids=["brave", "tavily"])
async def test_a_refused_key_is_reported_without_a_retry(api: Api, status: int) -> None:
    recorder = Recorder(httpx.Response(status, json={"detail": "Invalid API key"}))

    with pytest.raises(SourceError) as caught:
        await search(api, recorder)

    assert caught.value.reason == "the search provider refused the API key"
    assert len(recorder.requests) == 1


async def test_searxng_without_json_output_says_how_to_enable_it() -> None:
    recorder = Recorder(httpx.Response(403, text="Forbidden"))

    with pytest.raises(SourceError) as caught:
        await search(SEARXNG, recorder)

    assert "add json to search.formats" in caught.value.reason


async def test_tavily_out_of_credits_is_said_plainly() -> None:
    recorder = Recorder(httpx.Response(432, json={"detail": {"error": "usage limit"}}))

    with pytest.raises(SourceError) as caught:
        await search(TAVILY, recorder)

    assert caught.value.reason == "the search provider's plan has no searches left"


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("reset"),
    ],
    ids=["429", "503", "timeout", "connection"],
)
async def test_passing_trouble_is_retried_once(api: Api, first: httpx.Response | Exception) -> None:
    recorder = Recorder(first, httpx.Response(200, json=api.answer(*RESULTS)))

    hits = await search(api, recorder)

    assert len(hits) == 3
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("responses", "reason"),
    [
        (
            [httpx.Response(429), httpx.Response(429)],
            "the search provider is limiting how often Brief may ask (429 Too Many Requests)",
        ),
        (
            [httpx.Response(502), httpx.Response(503)],
            "the search provider failed (503 Service Unavailable)",
        ),
        (
            [httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")],
            "the search provider did not answer in time",
        ),
        (
            [httpx.ConnectError("refused"), httpx.ConnectError("refused")],
            "could not connect to the search provider",
        ),
    ],
    ids=["429", "5xx", "timeout", "connection"],
)
async def test_trouble_that_outlasts_the_retry_becomes_a_reason(
    api: Api, responses: list[httpx.Response | Exception], reason: str
) -> None:
    recorder = Recorder(*responses)

    with pytest.raises(SourceError) as caught:
        await search(api, recorder)

    assert caught.value.reason == reason
    assert len(recorder.requests) == 2


async def test_a_rejected_request_carries_the_providers_explanation(api: Api) -> None:
    recorder = Recorder(httpx.Response(422, json={"error": {"detail": "count must be <= 20"}}))

    with pytest.raises(SourceError) as caught:
        await search(api, recorder)

    assert caught.value.reason == (
        "the search provider rejected the request (422 Unprocessable Entity: count must be <= 20)"
    )
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad gateway</html>", b'{"results": [', b"\xff\xfe\x00", b'"just a string"', b"[]"],
    ids=["html", "truncated", "binary", "string", "list"],
)
async def test_an_answer_that_is_not_json_is_a_clear_failure(api: Api, body: bytes) -> None:
    recorder = Recorder(
        httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )

    with pytest.raises(SourceError) as caught:
        await search(api, recorder)

    assert caught.value.reason == "the search provider sent an answer Brief cannot read"


async def test_results_in_the_wrong_shape_are_a_clear_failure(api: Api) -> None:
    body = json.dumps(api.wrap([])).replace("[]", '{"url": "https://bees.example/"}')
    recorder = Recorder(httpx.Response(200, content=body.encode()))

    with pytest.raises(SourceError) as caught:
        await search(api, recorder)

    assert caught.value.reason == "the search provider sent an answer Brief cannot read"


async def test_an_oversized_answer_is_refused() -> None:
    recorder = Recorder(httpx.Response(200, content=b" " * 4_000_001))

    with pytest.raises(SourceError) as caught:
        await search(SEARXNG, recorder)

    assert caught.value.reason == "the search provider sent more than 4,000,000 bytes"
