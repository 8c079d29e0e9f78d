"""Vector indexes over httpx.MockTransport: the queries each server documents, and failures."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from brief.adapters.vector import OpenSearchIndex, QdrantIndex
from brief.errors import SourceError
from brief.ports import Passage

QDRANT = "http://qdrant.test:6333"
OPENSEARCH = "https://search.test:9200"


class Recorder:
    """A MockTransport answering with `responses` in turn; keeps each request's JSON body."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.requests: list[httpx.Request] = []
        self._responses = list(responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def body(self, n: int = 0) -> Any:
        return json.loads(self.requests[n].content)


async def embed(text: str) -> list[float]:
    """A stand-in embedding model: deterministic and tiny."""
    return [float(len(text)), 1.0, 0.5]


def qdrant_answer(*points: Any) -> dict[str, Any]:
    return {"result": {"points": list(points)}, "status": "ok", "time": 0.002}


def point(id: int | str, score: float, **payload: Any) -> dict[str, Any]:
    return {"id": id, "version": 3, "score": score, "payload": payload}


def opensearch_answer(*hits: dict[str, Any]) -> dict[str, Any]:
    return {
        "took": 3,
        "timed_out": False,
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": 1.0,
            "hits": list(hits),
        },
    }


def hit(id: str, score: float | None, **source: Any) -> dict[str, Any]:
    return {"_index": "docs", "_id": id, "_score": score, "_source": source}


SCOUTS = "Scouts dance longer for better cavities."
QUORUM = "A quorum of about fifteen scouts at one site triggers liftoff."


# Qdrant


async def test_qdrant_with_an_embed_callable_sends_the_vector() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            json=qdrant_answer(
                point(7, 0.91, text=SCOUTS, title="Scout dances", url="https://bees.example/d"),
                point("5c56c793-69f3-4fbf-87e6-c4bf54c28c26", 0.72, text=QUORUM),
            ),
        )
    )
    async with recorder.client() as client:
        index = QdrantIndex(client, QDRANT + "/", embed=embed, api_key="qd-key", retry_delay_s=0)
        passages = await index.query("how do scouts  decide", collection="bees", top_k=2)

    assert passages == [
        Passage("7", SCOUTS, 0.91, "Scout dances", "https://bees.example/d"),
        Passage("5c56c793-69f3-4fbf-87e6-c4bf54c28c26", QUORUM, 0.72),
    ]
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == (
        "POST",
        "http://qdrant.test:6333/collections/bees/points/query",
    )
    assert request.headers["api-key"] == "qd-key"
    assert recorder.body() == {
        "query": [20.0, 1.0, 0.5],  # the text with its whitespace collapsed
        "limit": 2,
        "with_payload": ["text", "title", "url"],
    }


async def test_qdrant_without_embed_lets_the_server_embed_the_text() -> None:
    recorder = Recorder(httpx.Response(200, json=qdrant_answer()))
    async with recorder.client() as client:
        index = QdrantIndex(client, QDRANT, model="brief/hashed-words", using="dense")
        assert await index.query("scouts", collection="bees", top_k=5) == []

    assert recorder.body() == {
        "query": {"text": "scouts", "model": "brief/hashed-words"},
        "using": "dense",
        "limit": 5,
        "with_payload": ["text", "title", "url"],
    }
    assert "api-key" not in recorder.requests[0].headers


async def test_qdrant_payload_fields_are_configurable_and_bad_points_skipped() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            json=qdrant_answer(
                point(
                    1,
                    0.9,
                    body="  " + SCOUTS + "\n",
                    heading=" Scouts\n at work ",
                    link="javascript:x",
                ),
                point(2, 0.8, body="   "),
                point(3, 0.7, other=SCOUTS),
                {"id": None, "score": 0.6, "payload": {"body": QUORUM}},
                "not a point",
                point(4, 0.5, body=QUORUM, link="s3://bees/papers/q.pdf"),
            ),
        )
    )
    async with recorder.client() as client:
        index = QdrantIndex(
            client, QDRANT, embed=embed, text_field="body", title_field="heading", url_field="link"
        )
        passages = await index.query("scouts", collection="bees", top_k=10)

    assert passages == [
        Passage("1", SCOUTS, 0.9, "Scouts at work", None),
        Passage("4", QUORUM, 0.5, None, "s3://bees/papers/q.pdf"),
    ]
    assert recorder.body()["with_payload"] == ["body", "heading", "link"]


async def test_qdrant_missing_collection_is_named() -> None:
    recorder = Recorder(
        httpx.Response(
            404, json={"status": {"error": "Not found: Collection `bees` doesn't exist!"}}
        )
    )
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, embed=embed).query("x", collection="bees", top_k=3)

    assert caught.value.reason == "the vector index has no collection named bees"


async def test_qdrant_explains_a_rejected_query() -> None:
    error = "Wrong input: Vector dimension error: expected dim: 384, got 3"
    recorder = Recorder(httpx.Response(400, json={"status": {"error": error}, "time": 0.0}))
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, embed=embed).query("x", collection="bees", top_k=3)

    assert (
        caught.value.reason == f"the vector index rejected the request (400 Bad Request: {error})"
    )


async def test_qdrant_refused_key() -> None:
    recorder = Recorder(httpx.Response(401, text="Must provide an API key"))
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, api_key="bad").query("x", collection="b", top_k=3)

    assert caught.value.reason == "the vector index refused the API key"


async def test_qdrant_is_retried_once_after_a_503() -> None:
    recorder = Recorder(
        httpx.Response(503), httpx.Response(200, json=qdrant_answer(point(1, 0.5, text=SCOUTS)))
    )
    async with recorder.client() as client:
        index = QdrantIndex(client, QDRANT, embed=embed, retry_delay_s=0)
        passages = await index.query("x", collection="bees", top_k=3)

    assert [p.text for p in passages] == [SCOUTS]
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [{"result": [point(1, 0.5, text=SCOUTS)]}, {"status": "ok"}, [], {"result": {"points": {}}}],
    ids=["old-search-shape", "no-result", "list", "points-not-a-list"],
)
async def test_qdrant_answer_in_another_shape_is_a_clear_failure(answer: Any) -> None:
    recorder = Recorder(httpx.Response(200, json=answer))
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, embed=embed).query("x", collection="b", top_k=3)

    assert caught.value.reason == "the vector index sent an answer Brief cannot read"


async def test_top_k_is_capped_and_zero_asks_nothing() -> None:
    recorder = Recorder(httpx.Response(200, json=qdrant_answer()))
    async with recorder.client() as client:
        index = QdrantIndex(client, QDRANT, embed=embed)
        assert await index.query("x", collection="bees", top_k=0) == []
        await index.query("x", collection="bees", top_k=10_000)

    assert len(recorder.requests) == 1
    assert recorder.body()["limit"] == 100


# Shared checks


@pytest.mark.parametrize(
    "collection", ["", "..", ".hidden", "a/b", "../admin", "bees?x=1", "*", "_all"]
)
@pytest.mark.parametrize("kind", ["qdrant", "opensearch"])
async def test_a_collection_name_that_could_leave_its_path_is_refused(
    kind: str, collection: str
) -> None:
    recorder = Recorder()
    async with recorder.client() as client:
        index = (
            QdrantIndex(client, QDRANT, embed=embed)
            if kind == "qdrant"
            else OpenSearchIndex(client, OPENSEARCH)
        )
        with pytest.raises(SourceError) as caught:
            await index.query("x", collection=collection, top_k=3)

    assert caught.value.reason == f"{collection!r} is not a valid collection name"
    assert recorder.requests == []


async def test_an_empty_query_is_refused() -> None:
    async with Recorder().client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, embed=embed).query(" \t", collection="b", top_k=3)

    assert caught.value.reason == "the vector query is empty"


@pytest.mark.parametrize("vector", [[], [float("nan")], ["0.1"]], ids=["empty", "nan", "strings"])
async def test_an_embedding_that_is_not_a_vector_is_refused(vector: list[Any]) -> None:
    async def broken(text: str) -> list[float]:
        return vector

    recorder = Recorder()
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await QdrantIndex(client, QDRANT, embed=broken).query("x", collection="b", top_k=3)

    assert caught.value.reason == "the embedding model returned no usable vector"
    assert recorder.requests == []


async def test_an_embed_failure_is_the_sources_failure() -> None:
    async def down(text: str) -> list[float]:
        raise SourceError("the embedding model is unavailable")

    async with Recorder().client() as client:
        with pytest.raises(SourceError) as caught:
            await OpenSearchIndex(client, OPENSEARCH, embed=down).query(
                "x", collection="b", top_k=3
            )

    assert caught.value.reason == "the embedding model is unavailable"


# OpenSearch


async def test_opensearch_knn_query_with_an_embed_callable() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            json=opensearch_answer(
                hit("a1", 0.88, text=SCOUTS, title="Dances", url="https://bees.example/d"),
                hit("a2", None, text=QUORUM),
            ),
        )
    )
    async with recorder.client() as client:
        index = OpenSearchIndex(
            client, OPENSEARCH, embed=embed, vector_field="vec", auth=httpx.BasicAuth("u", "p")
        )
        passages = await index.query("scouts", collection="bee-papers", top_k=2)

    assert passages == [
        Passage("a1", SCOUTS, 0.88, "Dances", "https://bees.example/d"),
        Passage("a2", QUORUM, 0.0),
    ]
    (request,) = recorder.requests
    assert str(request.url) == "https://search.test:9200/bee-papers/_search"
    assert request.headers["Authorization"].startswith("Basic ")
    assert recorder.body() == {
        "size": 2,
        "query": {"knn": {"vec": {"vector": [6.0, 1.0, 0.5], "k": 2}}},
        "_source": ["text", "title", "url"],
    }


async def test_opensearch_neural_query_lets_the_cluster_embed() -> None:
    recorder = Recorder(httpx.Response(200, json=opensearch_answer()))
    async with recorder.client() as client:
        index = OpenSearchIndex(client, OPENSEARCH, model_id="m-123")
        await index.query("scouts", collection="bees", top_k=4)

    assert recorder.body()["query"] == {
        "neural": {"embedding": {"query_text": "scouts", "model_id": "m-123", "k": 4}}
    }


async def test_opensearch_without_a_model_falls_back_to_a_text_match() -> None:
    recorder = Recorder(httpx.Response(200, json=opensearch_answer(hit("x", 3.2, body=QUORUM))))
    async with recorder.client() as client:
        index = OpenSearchIndex(client, OPENSEARCH, text_field="body")
        passages = await index.query("quorum", collection="bees", top_k=4)

    assert recorder.body() == {
        "size": 4,
        "query": {"match": {"body": {"query": "quorum"}}},
        "_source": ["body", "title", "url"],
    }
    assert passages == [Passage("x", QUORUM, 3.2)]


async def test_opensearch_missing_index_and_refused_credentials() -> None:
    missing = {
        "error": {"type": "index_not_found_exception", "reason": "no such index [bees]"},
        "status": 404,
    }
    recorder = Recorder(httpx.Response(404, json=missing), httpx.Response(403, json={}))
    async with recorder.client() as client:
        index = OpenSearchIndex(client, OPENSEARCH)
        with pytest.raises(SourceError) as first:
            await index.query("x", collection="bees", top_k=3)
        with pytest.raises(SourceError) as second:
            await index.query("x", collection="bees", top_k=3)

    assert first.value.reason == "the vector index has no collection named bees"
    assert second.value.reason == "the vector index refused Brief's credentials"


async def test_opensearch_timeouts_are_retried_once_then_reported() -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"))
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await OpenSearchIndex(client, OPENSEARCH, retry_delay_s=0).query(
                "x", collection="bees", top_k=3
            )

    assert caught.value.reason == "the vector index did not answer in time"
    assert len(recorder.requests) == 2


async def test_opensearch_answer_without_hits_is_a_clear_failure() -> None:
    recorder = Recorder(httpx.Response(200, json={"took": 1, "timed_out": False}))
    async with recorder.client() as client:
        with pytest.raises(SourceError) as caught:
            await OpenSearchIndex(client, OPENSEARCH).query("x", collection="bees", top_k=3)

    assert caught.value.reason == "the vector index sent an answer Brief cannot read"
