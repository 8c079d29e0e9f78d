"""A page cache in the blob store, revalidated with conditional GETs.

`keys.cached_page` (by the SHA-256 of the normalized URL) is one object per URL: a line of
JSON with what the last fetch learned (validators, content type, freshness, the body's
SHA-256 and size), a newline, then the body's bytes. So a first fetch costs one read (a
miss) and one write, a fresh page one read, and a 304 one read (and a write of the whole
object, body and all, only when the 304 renews the page's freshness).

A page is reused without asking the server only while its own `Cache-Control` says it is
fresh (`s-maxage` or `max-age`, less its `Age`, capped by `max_fresh_s`; RFC 9111 as a shared
cache: `no-store` and `private` pages are not kept, `no-cache` ones always revalidated; no
heuristic freshness, so a page that says nothing is never served blind). Otherwise each fetch
asks `If-None-Match` / `If-Modified-Since`, and a 304 costs headers only. Pages with neither
freshness nor a validator are not cached, since they could only be fetched in full again.

The cache only ever saves work: a storage failure, or an entry that is missing, cut short,
unreadable or whose body does not match its SHA-256, is logged and the page is fetched as if
there were no cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from brief import keys
from brief.errors import StorageUnavailable
from brief.models import utcnow
from brief.ports import BlobStore, FetchedPage
from brief.retrieval import HttpFetcher, HttpResult
from brief.urls import normalize_url

log = logging.getLogger(__name__)

PAGES = keys.PAGES
# The object's own content type: a line of JSON and the page's bytes, which are no one type.
ENTRY_TYPE = "application/octet-stream"


class CachedPage(BaseModel):
    """The first line of `keys.cached_page`: the last good fetch of a URL, and a check of the
    body that follows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[2] = 2
    url: str
    final_url: str
    etag: str | None
    last_modified: str | None
    content_type: str | None
    fetched_at: datetime
    sha256: str  # of the body
    size: int
    # Until when the page may be reused without asking the server (its Cache-Control);
    # None: revalidate on every fetch.
    fresh_until: datetime | None = None

    def validators(self) -> dict[str, str]:
        """The conditional request headers that ask "has this changed?" (a validator that no
        request header can carry, not visible ASCII, is left out: it cannot be sent back)."""
        headers: dict[str, str] = {}
        if self.etag and _sendable(self.etag):
            headers["If-None-Match"] = self.etag
        if self.last_modified and _sendable(self.last_modified):
            headers["If-Modified-Since"] = self.last_modified
        return headers


def _sendable(value: str) -> bool:
    return value.isascii() and value.isprintable()


def encode_entry(entry: CachedPage, body: bytes) -> bytes:
    """The stored object: the entry as one line of JSON (JSON escapes any newline in a
    string), a newline, then the body."""
    return entry.model_dump_json().encode() + b"\n" + body


class DamagedEntry(ValueError):
    """A stored object that is not an entry and its whole, matching body."""


def decode_entry(raw: bytes) -> tuple[CachedPage, bytes]:
    """The entry and body `encode_entry` stored; DamagedEntry when `raw` is not that (another
    format, cut short, or a body that does not match its size and SHA-256)."""
    head, newline, body = raw.partition(b"\n")
    if not newline:
        raise DamagedEntry("no entry line")
    try:
        entry = CachedPage.model_validate_json(head)
    except ValidationError as exc:
        raise DamagedEntry("entry line unreadable") from exc
    if len(body) != entry.size or hashlib.sha256(body).hexdigest() != entry.sha256:
        raise DamagedEntry("body does not match its size and SHA-256")
    return entry, body


_DIRECTIVE = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*\"?([^\",]*)\"?)?\s*")


def freshness_s(cache_control: str | None, age: str | None = None) -> float | None:
    """Seconds a shared cache may reuse a response unasked; None: it may not store it at all.

    `s-maxage` wins over `max-age` (this cache is shared by every user); `no-store` and
    `private` forbid storing; `no-cache` stores but always revalidates (0).
    """
    directives: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        match = _DIRECTIVE.fullmatch(part)
        if match:
            directives[match.group(1).lower()] = match.group(2)
    if "no-store" in directives or "private" in directives:
        return None
    if "no-cache" in directives:
        return 0.0
    for name in ("s-maxage", "max-age"):
        value = directives.get(name)
        if value is not None and value.isdigit():
            current = int(age) if age and age.strip().isdigit() else 0
            return max(0.0, float(int(value) - current))
    return 0.0


def page_key(url: str) -> str:
    """The cache entry's key for `url` (ValueError when `url` is not a URL)."""
    return keys.cached_page(hashlib.sha256(normalize_url(url).encode()).hexdigest())


class CachingFetcher:
    """A `Fetcher` that keeps pages in the blob store and revalidates them on every fetch."""

    def __init__(
        self,
        inner: HttpFetcher,
        blobs: BlobStore,
        *,
        max_fresh_s: float = 86_400.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._inner = inner
        self._blobs = blobs
        self._max_fresh_s = max_fresh_s
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()

    async def fetch(self, url: str) -> FetchedPage:
        """The page at `url`: `cached=True` when it came from the cache (fresh, or confirmed
        by a 304)."""
        try:
            key = page_key(url)
        except ValueError:
            return await self._inner.fetch(url)  # not a URL: the fetcher gives the reason
        cached = await self._entry(key)
        if cached is None:
            result = await self._inner.get(url)
        else:
            entry, body = cached
            if entry.fresh_until is not None and self._clock() < entry.fresh_until:
                # Fresh, as its server said: no request at all.
                return FetchedPage(url, entry.final_url, entry.content_type, body, 0, cached=True)
            result = await self._inner.get(url, headers=entry.validators())
            if result.not_modified:
                # Only the page the validators came from may be confirmed by them.
                if normalize_url(result.final_url) == normalize_url(entry.final_url):
                    self._keep(self._refresh(key, entry, body, result))
                    return FetchedPage(
                        url,
                        entry.final_url,
                        entry.content_type,
                        body,
                        result.elapsed_ms,
                        cached=True,
                    )
                cached = None  # a moved page: fetch and store anew
                result = await self._inner.get(url)
        # Off the critical path: the page goes on to extraction and the job while its cache
        # entry is written (`settle` waits for it before the invocation ends).
        self._keep(self._store(key, cached[0] if cached else None, result))
        return result.page()

    def _keep(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _freshness(self, result: HttpResult) -> tuple[bool, datetime | None]:
        """Whether `result` may be kept, and until when it may be reused unasked (None:
        revalidate on every fetch)."""
        fresh_s = freshness_s(result.cache_control, result.age)
        if fresh_s is None:
            return False, None
        fresh_s = min(fresh_s, self._max_fresh_s)
        return True, (self._clock() + timedelta(seconds=fresh_s) if fresh_s > 0 else None)

    async def _refresh(self, key: str, entry: CachedPage, body: bytes, result: HttpResult) -> None:
        """A 304 may renew the page's freshness (RFC 9111 4.3.4): keep what it says (the
        whole object again, its body with it)."""
        _, fresh_until = self._freshness(result)
        if fresh_until is None and entry.fresh_until is None:
            return
        renewed = entry.model_copy(update={"fresh_until": fresh_until})
        try:
            await self._blobs.replace(key, encode_entry(renewed, body), content_type=ENTRY_TYPE)
        except StorageUnavailable as exc:
            log.warning("page cache not renewed", extra={"key": key, "error": str(exc)})

    async def settle(self) -> None:
        """Wait for the cache writes still running; one that crashed is logged, not raised."""
        while self._writes:
            pending = list(self._writes)
            self._writes.difference_update(pending)
            for outcome in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("page cache write crashed", exc_info=outcome)

    async def _entry(self, key: str) -> tuple[CachedPage, bytes] | None:
        """The stored entry and its body; None (a miss) when there is none or it cannot be
        trusted."""
        try:
            raw = await self._blobs.get(key)
        except StorageUnavailable as exc:
            log.warning("page cache unavailable", extra={"key": key, "error": str(exc)})
            return None
        if raw is None:
            return None
        try:
            return decode_entry(raw)
        except DamagedEntry as exc:
            log.warning("page cache entry damaged", extra={"key": key, "error": str(exc)})
            return None

    async def _store(self, key: str, old: CachedPage | None, result: HttpResult) -> None:
        keep, fresh_until = self._freshness(result)
        if not keep:
            return  # its server forbids keeping it (no-store, private)
        if not (result.etag or result.last_modified or fresh_until):
            return  # nothing to revalidate with: a later fetch would download it anyway
        entry = CachedPage(
            url=result.url,
            final_url=result.final_url,
            etag=result.etag,
            last_modified=result.last_modified,
            content_type=result.content_type,
            fetched_at=self._clock(),
            sha256=hashlib.sha256(result.body).hexdigest(),
            size=len(result.body),
            fresh_until=fresh_until,
        )
        if old is not None and _same(old, entry):
            return  # the server ignored the condition but sent the same page: nothing to write
        try:
            await self._blobs.replace(
                key, encode_entry(entry, result.body), content_type=ENTRY_TYPE
            )
        except StorageUnavailable as exc:
            log.warning("page cache not written", extra={"key": key, "error": str(exc)})


def _same(a: CachedPage, b: CachedPage) -> bool:
    return a.model_dump(exclude={"fetched_at", "fresh_until"}) == b.model_dump(
        exclude={"fetched_at", "fresh_until"}
    ) and (a.fresh_until is None) == (b.fresh_until is None)
