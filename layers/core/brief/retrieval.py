"""Retrieval: fetch every source of a job at once, within size and time limits.

`HttpFetcher` streams a response and stops reading the moment it passes the size limit, so a
2 GB page never reaches memory; redirects are followed by hand so every hop passes the
egress policy. `retrieve_all` gathers all sources under a concurrency bound and an overall
deadline; one failing source never fails the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from brief.egress import EgressPolicy
from brief.errors import SourceError
from brief.ports import FetchedPage, Fetcher

log = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How much of the network one source may use."""

    timeout_s: float = 10.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5


class HttpFetcher:
    """Fetches over one shared httpx client (built once per container, not per request)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: EgressPolicy,
        limits: FetchLimits = FetchLimits(),  # frozen, so sharing is safe
    ) -> None:
        self._client = client
        self._policy = policy
        self._limits = limits

    async def fetch(self, url: str) -> FetchedPage:
        """GET `url`; raises SourceError with a reason a user understands."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                final_url, content_type, body = await self._follow(httpx.URL(url))
        except TimeoutError as exc:
            raise SourceError(f"timed out after {self._limits.timeout_s:g} s") from exc
        except httpx.InvalidURL as exc:
            raise SourceError(f"not a valid URL: {exc}") from exc
        except httpx.TooManyRedirects as exc:
            raise SourceError(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise SourceError(f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"could not connect: {type(exc).__name__}") from exc
        elapsed = int((time.perf_counter() - started) * 1000)
        return FetchedPage(url, str(final_url), content_type, body, elapsed)

    async def _follow(self, url: httpx.URL) -> tuple[httpx.URL, str | None, bytes]:
        for _ in range(self._limits.max_redirects + 1):
            await self._policy.check(url)
            async with self._client.stream("GET", url, follow_redirects=False) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = url.join(response.headers["location"])
                    continue
                if response.status_code >= 400:
                    phrase = response.reason_phrase or ""
                    raise SourceError(
                        f"the server answered {response.status_code} {phrase}".strip()
                    )
                return url, response.headers.get("content-type"), await self._read(response)
        raise httpx.TooManyRedirects(f"more than {self._limits.max_redirects} redirects")

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self._limits.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceError(f"too large: {int(declared):,} bytes (the limit is {limit:,})")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decoded: the cap holds after gzip too
            size += len(chunk)
            if size > limit:
                raise SourceError(f"too large: more than {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One source's result: the page, or the reason it could not be fetched."""

    index: int
    url: str
    page: FetchedPage | None
    reason: str | None
    elapsed_ms: int


async def retrieve_all(
    sources: Sequence[tuple[int, str]],
    fetcher: Fetcher,
    *,
    concurrency: int,
    deadline_s: float,
    on_done: Callable[[Fetched], Awaitable[None]] | None = None,
) -> list[Fetched]:
    """Fetch every `(index, url)` at once, at most `concurrency` in flight, within `deadline_s`.

    `on_done` runs as each source finishes, so its record can be stored while the slowest
    source is still downloading.
    """
    bound = asyncio.Semaphore(concurrency)
    deadline = asyncio.get_running_loop().time() + deadline_s

    async def one(index: int, url: str) -> Fetched:
        started = time.perf_counter()
        page: FetchedPage | None = None
        reason: str | None = None
        try:
            async with asyncio.timeout_at(deadline), bound:
                page = await fetcher.fetch(url)
        except SourceError as exc:
            reason = exc.reason
        except TimeoutError:
            reason = f"retrieval deadline of {deadline_s:g} s passed"
        result = Fetched(index, url, page, reason, int((time.perf_counter() - started) * 1000))
        if on_done is not None:
            await on_done(result)
        return result

    return list(await asyncio.gather(*(one(i, u) for i, u in sources)))
