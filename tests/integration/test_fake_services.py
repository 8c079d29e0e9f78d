"""Brief's search and vector adapters against the loopback fakes the demo uses."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from brief.adapters.search import SearxngSearch
from brief.adapters.vector import QdrantIndex
from brief.egress import EgressPolicy
from brief.errors import SourceError
from brief.extraction import extract
from brief.retrieval import HttpFetcher
from brief_testing.fake_services import (
    COLLECTION,
    DIMENSIONS,
    EMBEDDING_MODEL,
    FakeServices,
    embed_text,
    serving,
    words,
)
from brief_testing.pages import PageServer

QUESTION = "How do honeybees decide where to build a new nest?"


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def services(pages: PageServer) -> Iterator[FakeServices]:
    with serving(pages.url) as services:
        yield services


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        yield client


async def embed(text: str) -> list[float]:
    return embed_text(text)


# Search


async def test_search_finds_sample_pages_that_can_be_fetched_and_read(
    services: FakeServices, pages: PageServer, client: httpx.AsyncClient
) -> None:
    hits = await SearxngSearch(client, services.url).search(QUESTION, limit=3)

    assert len(hits) == 3
    assert all(hit.url in pages.pages() for hit in hits)
    assert all(hit.title and hit.snippet for hit in hits)
    fetcher = HttpFetcher(client, EgressPolicy({"127.0.0.1"}))
    page = await fetcher.fetch(hits[0].url)
    text = extract(page.body, page.content_type, page.final_url).text
    assert {"honeybee", "nest"} <= set(words(text))


async def test_search_ranks_the_page_on_the_topic_first(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    search = SearxngSearch(client, services.url)

    stop = await search.search("stop signals and head butts", limit=5)
    scouts = await search.search("what do scouts look for in a cavity", limit=5)

    assert stop[0].url.endswith("/05-stop-signals-and-deadlocks.txt")
    assert scouts[0].url.endswith("/02-what-scouts-look-for.html")


async def test_search_for_words_no_sample_uses_finds_nothing(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    assert await SearxngSearch(client, services.url).search("quantum chromodynamics", limit=5) == []


async def test_search_without_json_output_is_refused_like_searxng(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{services.url}/search", params={"q": "bees", "format": "html"})

    assert response.status_code == 403


# Vector


async def test_a_text_query_is_embedded_by_the_server(
    services: FakeServices, pages: PageServer, client: httpx.AsyncClient
) -> None:
    index = QdrantIndex(client, services.url, model=EMBEDDING_MODEL)

    passages = await index.query("stop signals head butts", collection=COLLECTION, top_k=3)

    assert len(passages) == 3
    top = passages[0]
    assert top.url == f"{pages.url}/05-stop-signals-and-deadlocks.txt"
    assert "stop signal" in top.text.lower()
    assert (top.title or "").startswith("Stop Signals")
    assert passages[0].score >= passages[1].score >= passages[2].score


async def test_an_embed_callable_gives_the_same_answer_as_server_side_embedding(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    by_server = QdrantIndex(client, services.url, model=EMBEDDING_MODEL)
    by_client = QdrantIndex(client, services.url, embed=embed)

    assert await by_client.query(QUESTION, collection=COLLECTION, top_k=4) == (
        await by_server.query(QUESTION, collection=COLLECTION, top_k=4)
    )


async def test_a_missing_collection_is_named(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    index = QdrantIndex(client, services.url, embed=embed)

    with pytest.raises(SourceError) as caught:
        await index.query("bees", collection="papers", top_k=3)

    assert caught.value.reason == "the vector index has no collection named papers"


async def test_a_model_the_server_does_not_have_is_explained(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    index = QdrantIndex(client, services.url)  # Qdrant Cloud's default model

    with pytest.raises(SourceError) as caught:
        await index.query("bees", collection=COLLECTION, top_k=3)

    assert caught.value.reason.startswith("the vector index rejected the request (400 Bad Request:")
    assert EMBEDDING_MODEL in caught.value.reason


async def test_a_vector_of_the_wrong_size_is_explained(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    async def small(text: str) -> list[float]:
        return [1.0, 0.0, 0.0]

    with pytest.raises(SourceError) as caught:
        await QdrantIndex(client, services.url, embed=small).query(
            "bees", collection=COLLECTION, top_k=3
        )

    assert f"expected dim: {DIMENSIONS}, got 3" in caught.value.reason


async def test_the_api_key_is_required_when_the_server_has_one(
    pages: PageServer, client: httpx.AsyncClient
) -> None:
    with serving(pages.url, api_key="qd-secret") as guarded:
        wrong = QdrantIndex(client, guarded.url, embed=embed, api_key="guess")
        right = QdrantIndex(client, guarded.url, embed=embed, api_key="qd-secret")

        with pytest.raises(SourceError) as caught:
            await wrong.query("bees", collection=COLLECTION, top_k=1)
        assert len(await right.query("bees", collection=COLLECTION, top_k=1)) == 1

    assert caught.value.reason == "the vector index refused the API key"


async def test_the_collection_describes_its_vectors(
    services: FakeServices, client: httpx.AsyncClient
) -> None:
    info = (await client.get(f"{services.url}/collections/{COLLECTION}")).json()["result"]

    assert info["config"]["params"]["vectors"] == {"size": DIMENSIONS, "distance": "Cosine"}
    assert info["points_count"] == len(services.passages) > 20


def test_the_embedding_is_deterministic_and_of_unit_length() -> None:
    first = embed_text("Scouts dance for the best cavities.")

    assert first == embed_text("scouts  DANCE for the best cavity")  # case, plurals, spacing
    assert len(first) == DIMENSIONS
    assert math.isclose(sum(x * x for x in first), 1.0)
    assert first != embed_text("Stop signals end a dance.")
    assert embed_text("the of and") == [0.0] * DIMENSIONS  # no content words: no direction
