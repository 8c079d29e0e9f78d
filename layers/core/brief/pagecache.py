"""A page cache in the blob store, revalidated with conditional GETs.

`cache/pages/{sha256(normalized url)}.json` holds what the last fetch learned (validators,
content type, where the body is); the body itself is content-addressed at
`cache/bodies/{sha256(body)}`, so identical pages share one object and an entry can be
replaced without ever rewriting a body. A cached page is never served blind: each fetch asks
the server `If-None-Match` / `If-Modified-Since`, and a 304 costs headers only. Pages without
an ETag or Last-Modified are not cached, since they could only be fetched in full again.

The cache only ever saves work: a storage failure, a broken entry or a missing body is logged
and the page is fetched as if there were no cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from brief.concurrency import both
from brief.errors import StorageUnavailable
from brief.models import utcnow
from brief.ports import BlobStore, FetchedPage
from brief.retrieval import HttpFetcher, HttpResult
from brief.urls import normalize_url

log = logging.getLogger(__name__)

PAGES = "cache/pages/"
BODIES = "cache/bodies/"


class CachedPage(BaseModel):
    """`cache/pages/{sha256(normalized url)}.json`: the last good fetch of a URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    url: str
    final_url: str
    etag: str | None
    last_modified: str | None
    content_type: str | None
    fetched_at: datetime
    body_key: str
    size: int

    def validators(self) -> dict[str, str]:
        """The conditional request headers that ask "has this changed?"."""
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def page_key(url: str) -> str:
    """The cache entry's key for `url` (ValueError when `url` is not a URL)."""
    return f"{PAGES}{hashlib.sha256(normalize_url(url).encode()).hexdigest()}.json"


def body_key(body: bytes) -> str:
    """The content address of a body."""
    return f"{BODIES}{hashlib.sha256(body).hexdigest()}"


class CachingFetcher:
    """A `Fetcher` that keeps pages in the blob store and revalidates them on every fetch."""

    def __init__(
        self,
        inner: HttpFetcher,
        blobs: BlobStore,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._inner = inner
        self._blobs = blobs
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()

    async def fetch(self, url: str) -> FetchedPage:
        """The page at `url`: `cached=True` when the server confirmed the stored copy (304)."""
        try:
            key = page_key(url)
        except ValueError:
            return await self._inner.fetch(url)  # not a URL: the fetcher gives the reason
        entry = await self._entry(key)
        if entry is None:
            result = await self._inner.get(url)
        else:
            result = await self._inner.get(url, headers=entry.validators())
            if result.not_modified:
                # Only the page the validators came from may be confirmed by them.
                same_page = normalize_url(result.final_url) == normalize_url(entry.final_url)
                body = await self._body(entry) if same_page else None
                if body is not None:
                    return FetchedPage(
                        url,
                        entry.final_url,
                        entry.content_type,
                        body,
                        result.elapsed_ms,
                        cached=True,
                    )
                entry = None  # a lost body or a moved page: fetch and store anew
                result = await self._inner.get(url)
        # Off the critical path: the page goes on to extraction and the job while its cache
        # entry is written (`settle` waits for it before the invocation ends).
        write = asyncio.create_task(self._store(key, entry, result))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return result.page()

    async def settle(self) -> None:
        """Wait for the cache writes still running; one that crashed is logged, not raised."""
        while self._writes:
            pending = list(self._writes)
            self._writes.difference_update(pending)
            for outcome in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("page cache write crashed", exc_info=outcome)

    async def _entry(self, key: str) -> CachedPage | None:
        try:
            raw = await self._blobs.get(key)
        except StorageUnavailable as exc:
            log.warning("page cache unavailable", extra={"key": key, "error": str(exc)})
            return None
        if raw is None:
            return None
        try:
            return CachedPage.model_validate_json(raw)
        except ValidationError:
            log.warning("page cache entry unreadable", extra={"key": key})
            return None

    async def _body(self, entry: CachedPage) -> bytes | None:
        try:
            body = await self._blobs.get(entry.body_key)
        except StorageUnavailable as exc:
            log.warning("page cache unavailable", extra={"key": entry.body_key, "error": str(exc)})
            return None
        if body is None or hashlib.sha256(body).hexdigest() != entry.body_key.removeprefix(BODIES):
            log.warning("page cache body missing or damaged", extra={"key": entry.body_key})
            return None
        return body

    async def _store(self, key: str, old: CachedPage | None, result: HttpResult) -> None:
        if not (result.etag or result.last_modified):
            return  # nothing to revalidate with: a later fetch would download it anyway
        entry = CachedPage(
            url=result.url,
            final_url=result.final_url,
            etag=result.etag,
            last_modified=result.last_modified,
            content_type=result.content_type,
            fetched_at=self._clock(),
            body_key=body_key(result.body),
            size=len(result.body),
        )
        if old is not None and _same(old, entry):
            return  # the server ignored the condition but sent the same page: nothing to write
        try:
            # Both at once: an entry whose body is not there yet reads as a lost body, which
            # `fetch` already handles by fetching anew.
            await both(
                self._blobs.put(
                    entry.body_key,
                    result.body,
                    content_type=result.content_type or "application/octet-stream",
                ),
                self._blobs.replace(key, entry.model_dump_json().encode()),
            )
        except StorageUnavailable as exc:
            log.warning("page cache not written", extra={"key": key, "error": str(exc)})


def _same(a: CachedPage, b: CachedPage) -> bool:
    return a.model_dump(exclude={"fetched_at"}) == b.model_dump(exclude={"fetched_at"})
