"""`SearchProvider` over web search APIs: SearXNG, Brave Search and Tavily.

Each adapter only knows its API's request and answer shapes; retries and the reasons a user
sees come from `JsonApi`. Results are pages to fetch, so only http(s) URLs are kept (the
fetcher's egress policy still checks every one), duplicates are dropped, and titles and
snippets lose the highlighting markup some providers add.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from brief.adapters.jsonapi import JsonApi, unreadable
from brief.errors import SourceError
from brief.ports import SearchHit

__all__ = ["BraveSearch", "SearxngSearch", "TavilySearch"]

ROLE = "the search provider"
BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"

# Brave and Tavily return at most 20 results and refuse queries over 400 characters.
_MAX_RESULTS = 20
_MAX_QUERY_CHARS = 400
_MAX_SNIPPET_CHARS = 500
_MAX_URL_CHARS = 2_048
_TAG = re.compile(r"<[^>]*>")


class SearxngSearch:
    """A SearXNG instance's JSON API: `GET {base}/search?q=...&format=json`.

    SearXNG has no result count parameter (a page holds about 20), so `limit` is applied
    here. An instance answers 403 unless `json` is listed in its `search.formats` setting.
    """

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, *, retry_delay_s: float = 0.5
    ) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._api = JsonApi(
            client,
            role=ROLE,
            retry_delay_s=retry_delay_s,
            reasons={
                403: "the SearXNG instance does not offer JSON results "
                "(add json to search.formats in its settings)"
            },
        )

    @property
    def name(self) -> str:
        """ "searxng"."""
        return "searxng"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """At most `limit` results, best first."""
        query = _checked(query)
        if limit <= 0:
            return []
        answer = await self._api.call("GET", self._url, params={"q": query, "format": "json"})
        return _hits(_field(answer, "results"), "content", limit)


class BraveSearch:
    """Brave's Web Search API, authenticated by the `X-Subscription-Token` header."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        *,
        url: str = BRAVE_URL,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._url = url
        self._headers = {"X-Subscription-Token": api_key}
        self._api = JsonApi(client, role=ROLE, retry_delay_s=retry_delay_s)

    @property
    def name(self) -> str:
        """ "brave"."""
        return "brave"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """At most `limit` (and at most 20) results, best first."""
        query = _clip_query(_checked(query))
        if limit <= 0:
            return []
        answer = await self._api.call(
            "GET",
            self._url,
            params={"q": query, "count": min(limit, _MAX_RESULTS)},
            headers=self._headers,
        )
        web = answer.get("web", {}) if isinstance(answer, dict) else None
        if not isinstance(web, dict):
            raise unreadable(ROLE)
        return _hits(web.get("results", []), "description", limit)


class TavilySearch:
    """Tavily's search API: `POST /search` with a bearer key."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        *,
        url: str = TAVILY_URL,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._api = JsonApi(
            client,
            role=ROLE,
            retry_delay_s=retry_delay_s,
            reasons={  # Tavily's own codes for a plan without credits left
                432: "the search provider's plan has no searches left",
                433: "the search provider's plan has no searches left",
            },
        )

    @property
    def name(self) -> str:
        """ "tavily"."""
        return "tavily"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """At most `limit` (and at most 20) results, best first."""
        query = _clip_query(_checked(query))
        if limit <= 0:
            return []
        answer = await self._api.call(
            "POST",
            self._url,
            body={"query": query, "max_results": min(limit, _MAX_RESULTS)},
            headers=self._headers,
        )
        return _hits(_field(answer, "results"), "content", limit)


def _checked(query: str) -> str:
    query = " ".join(query.split())
    if not query:
        raise SourceError("the search query is empty")
    return query


def _clip_query(query: str) -> str:
    """The query cut at a word boundary to the length the APIs accept."""
    if len(query) <= _MAX_QUERY_CHARS:
        return query
    return query[: _MAX_QUERY_CHARS + 1].rsplit(" ", 1)[0][:_MAX_QUERY_CHARS]


def _field(answer: Any, key: str) -> Any:
    if not isinstance(answer, dict):
        raise unreadable(ROLE)
    return answer.get(key, [])


def _hits(results: Any, snippet_key: str, limit: int) -> list[SearchHit]:
    """Up to `limit` hits with distinct http(s) URLs, in the provider's order."""
    if not isinstance(results, list):
        raise unreadable(ROLE)
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for item in results:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not _is_web_url(url.strip()) or url.strip() in seen:
            continue
        url = url.strip()
        seen.add(url)
        snippet = _plain(item.get(snippet_key))
        if snippet and len(snippet) > _MAX_SNIPPET_CHARS:
            snippet = snippet[: _MAX_SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
        hits.append(SearchHit(url=url, title=_plain(item.get("title")), snippet=snippet))
        if len(hits) == limit:
            break
    return hits


def _is_web_url(url: str) -> bool:
    if len(url) > _MAX_URL_CHARS:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _plain(value: Any) -> str | None:
    """Text without tags or entities (Brave marks matches with `<strong>`)."""
    if not isinstance(value, str):
        return None
    text = " ".join(html.unescape(_TAG.sub("", value)).split())
    return text or None
