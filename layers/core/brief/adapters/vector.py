"""`VectorIndex` over Qdrant and OpenSearch: passages that are already text, nothing to fetch.

Brief has no embedding model of its own, so each adapter works either way:

- with an `embed` callable (text to vector, e.g. an embeddings API client), the adapter
  sends the vector: Qdrant's `"query": [...]`, OpenSearch's `knn` query;
- without one, the server turns the text into a vector: Qdrant's inference (a `Document`
  with a model name), OpenSearch's `neural` query (a `model_id` deployed in ML Commons), or,
  when OpenSearch has no model either, a plain `match` query (BM25) on the text field.

A passage's text, title and URL come from payload (`_source`) fields named in the
constructor. `embed` must raise `SourceError` when it cannot embed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from brief.adapters.jsonapi import JsonApi, unreadable
from brief.errors import SourceError
from brief.ports import Passage

__all__ = ["DEFAULT_QDRANT_MODEL", "Embed", "OpenSearchIndex", "QdrantIndex"]

Embed = Callable[[str], Awaitable[list[float]]]

ROLE = "the vector index"
# Qdrant Cloud's free hosted text model (384 dimensions); the collection must match it.
DEFAULT_QDRANT_MODEL = "sentence-transformers/all-minilm-l6-v2"
MAX_TOP_K = 100
# Safe as one URL path segment in both servers: no slash, no leading dot, no wildcard.
_COLLECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_CITABLE_SCHEMES = frozenset({"http", "https", "s3"})


class QdrantIndex:
    """Qdrant's Query API: `POST {base}/collections/{collection}/points/query`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        embed: Embed | None = None,
        model: str = DEFAULT_QDRANT_MODEL,
        using: str | None = None,
        api_key: str | None = None,
        text_field: str = "text",
        title_field: str = "title",
        url_field: str = "url",
        retry_delay_s: float = 0.5,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._embed = embed
        self._model = model
        self._using = using
        self._headers = {"api-key": api_key} if api_key else {}
        self._fields = _Fields(text_field, title_field, url_field)
        self._api = JsonApi(client, role=ROLE, retry_delay_s=retry_delay_s)

    async def query(self, text: str, *, collection: str, top_k: int) -> list[Passage]:
        """The `top_k` passages nearest to `text` in `collection`, best first."""
        text = _checked(text, collection)
        if top_k <= 0:
            return []
        limit = min(top_k, MAX_TOP_K)
        query: Any = (
            await _vector(self._embed, text)
            if self._embed is not None
            else {"text": text, "model": self._model}
        )
        body: dict[str, Any] = {
            "query": query,
            "limit": limit,
            "with_payload": self._fields.names(),
        }
        if self._using:
            body["using"] = self._using
        answer = await self._api.call(
            "POST",
            f"{self._base}/collections/{collection}/points/query",
            body=body,
            headers=self._headers,
            reasons={404: _no_collection(collection)},
        )
        result = answer.get("result") if isinstance(answer, dict) else None
        points = result.get("points") if isinstance(result, dict) else None
        if not isinstance(points, list):
            raise unreadable(ROLE)
        passages = (
            self._fields.passage(p.get("id"), p.get("score"), p.get("payload"))
            for p in points
            if isinstance(p, dict)
        )
        return [p for p in passages if p is not None][:limit]


class OpenSearchIndex:
    """OpenSearch's `_search` on one index: k-NN, neural, or match (see the module doc)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        embed: Embed | None = None,
        model_id: str | None = None,
        vector_field: str = "embedding",
        text_field: str = "text",
        title_field: str = "title",
        url_field: str = "url",
        auth: httpx.Auth | None = None,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._embed = embed
        self._model_id = model_id
        self._vector_field = vector_field
        self._fields = _Fields(text_field, title_field, url_field)
        self._auth = auth
        self._api = JsonApi(
            client,
            role=ROLE,
            retry_delay_s=retry_delay_s,
            reasons={
                401: "the vector index refused Brief's credentials",
                403: "the vector index refused Brief's credentials",
            },
        )

    async def query(self, text: str, *, collection: str, top_k: int) -> list[Passage]:
        """The `top_k` best passages for `text` in the index named `collection`."""
        text = _checked(text, collection)
        if top_k <= 0:
            return []
        size = min(top_k, MAX_TOP_K)
        query: dict[str, Any]
        if self._embed is not None:
            vector = await _vector(self._embed, text)
            query = {"knn": {self._vector_field: {"vector": vector, "k": size}}}
        elif self._model_id is not None:
            neural = {"query_text": text, "model_id": self._model_id, "k": size}
            query = {"neural": {self._vector_field: neural}}
        else:
            query = {"match": {self._fields.text: {"query": text}}}
        answer = await self._api.call(
            "POST",
            f"{self._base}/{collection}/_search",
            body={"size": size, "query": query, "_source": self._fields.names()},
            auth=self._auth,
            reasons={404: _no_collection(collection)},
        )
        outer = answer.get("hits") if isinstance(answer, dict) else None
        hits = outer.get("hits") if isinstance(outer, dict) else None
        if not isinstance(hits, list):
            raise unreadable(ROLE)
        passages = (
            self._fields.passage(h.get("_id"), h.get("_score"), h.get("_source"))
            for h in hits
            if isinstance(h, dict)
        )
        return [p for p in passages if p is not None][:size]


@dataclass(frozen=True, slots=True)
class _Fields:
    """The payload fields that hold a passage's text, title and URL."""

    text: str
    title: str
    url: str

    def names(self) -> list[str]:
        return [self.text, self.title, self.url]

    def passage(self, point_id: Any, score: Any, payload: Any) -> Passage | None:
        """A passage from one result, or None when it has no id or no text."""
        if not isinstance(payload, dict) or not isinstance(point_id, str | int):
            return None
        text = payload.get(self.text)
        if not isinstance(text, str) or not text.strip():
            return None
        title = payload.get(self.title)
        url = payload.get(self.url)
        return Passage(
            id=str(point_id),
            text=text.strip(),
            score=float(score) if isinstance(score, int | float) else 0.0,
            title=(" ".join(title.split()) or None) if isinstance(title, str) else None,
            url=url.strip() if isinstance(url, str) and _citable(url.strip()) else None,
        )


def _checked(text: str, collection: str) -> str:
    if not _COLLECTION.fullmatch(collection):
        raise SourceError(f"{collection!r} is not a valid collection name")
    text = " ".join(text.split())
    if not text:
        raise SourceError("the vector query is empty")
    return text


async def _vector(embed: Embed, text: str) -> list[float]:
    vector = await embed(text)
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(x, int | float) and math.isfinite(x) for x in vector)
    ):
        raise SourceError("the embedding model returned no usable vector")
    return [float(x) for x in vector]


def _no_collection(collection: str) -> str:
    return f"the vector index has no collection named {collection}"


def _citable(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in _CITABLE_SCHEMES and bool(parts.netloc)
