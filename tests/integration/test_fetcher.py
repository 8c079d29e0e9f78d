"""HttpFetcher and CachingFetcher over a real socket, against the PageServer on loopback.

The client is the one production uses (`guarded_client`), with 127.0.0.1 as the one allowed
host, so every misbehaviour below goes through the real connection guard, the real httpcore
pool and the real wire. Each failure is shown by the reason a user would read.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from brief.adapters.memory import MemoryBlobStore
from brief.adapters.s3 import S3BlobStore
from brief.egress import EgressPolicy, guarded_client
from brief.errors import SourceError, StorageUnavailable
from brief.models import Expansion, SourceRecord
from brief.pagecache import (
    PAGES,
    CachedPage,
    CachingFetcher,
    decode_entry,
    encode_entry,
    freshness_s,
    page_key,
)
from brief.ports import FetchedPage
from brief.retrieval import FetchLimits, HttpFetcher
from brief.sources import Gatherer, SourceAdapters
from brief_testing.pages import SAMPLES, PageServer, gzip_bomb

LOOPBACK = "127.0.0.1"
LIMITS = FetchLimits(timeout_s=3.0, max_bytes=200_000, max_redirects=5, connect_timeout_s=1.0)


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    """The sample pages and the misbehaving routes, shared by the module's read-only tests."""
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PageServer]:
    """A server of its own over a copy of the samples, so a test may change a page."""
    root = tmp_path / "site"
    shutil.copytree(SAMPLES, root)
    server = PageServer(root).start()
    yield server
    server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with guarded_client(
        EgressPolicy([LOOPBACK]),
        timeout=httpx.Timeout(5.0),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        headers={"User-Agent": "BriefTest"},
    ) as built:
        yield built


def fetcher(client: httpx.AsyncClient, limits: FetchLimits = LIMITS) -> HttpFetcher:
    return HttpFetcher(client, EgressPolicy([LOOPBACK]), limits)


async def reason(fetcher: HttpFetcher, url: str) -> str:
    with pytest.raises(SourceError) as caught:
        await fetcher.fetch(url)
    return caught.value.reason


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


FIRST = "01-when-a-colony-splits.html"


# pages that work


async def test_a_page_arrives_whole_with_its_type(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    page = await fetcher(client).fetch(f"{pages.url}/{FIRST}")

    assert page.body == sample(FIRST)
    assert page.content_type == "text/html; charset=utf-8"
    assert page.final_url == f"{pages.url}/{FIRST}"
    assert page.cached is False


async def test_a_gzip_page_is_decoded(client: httpx.AsyncClient, pages: PageServer) -> None:
    page = await fetcher(client).fetch(f"{pages.url}/{FIRST}?gzip=1")
    assert page.body == sample(FIRST)


async def test_redirects_end_at_the_first_page(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    page = await fetcher(client).fetch(f"{pages.url}/redirect/3")
    assert page.final_url == f"{pages.url}/{FIRST}"
    assert page.body == sample(FIRST)


@pytest.mark.parametrize("kind", ["application/pdf", "application/octet-stream", "text/plain"])
async def test_types_extraction_may_handle_are_let_through(
    kind: str, client: httpx.AsyncClient, pages: PageServer
) -> None:
    page = await fetcher(client).fetch(f"{pages.url}/content-type/{kind}")
    assert page.content_type == kind


# time


async def test_a_slow_server_times_out_at_the_deadline(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    limits = FetchLimits(timeout_s=0.5, read_timeout_s=5.0)
    assert await reason(fetcher(client, limits), f"{pages.url}/bytes/100?delay=3") == (
        "timed out after 0.5 s"
    )


async def test_a_silent_server_hits_the_read_timeout(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    limits = FetchLimits(timeout_s=5.0, read_timeout_s=0.3)
    assert await reason(fetcher(client, limits), f"{pages.url}/bytes/100?delay=2") == (
        f"timed out: {LOOPBACK} sent nothing for 0.3 s"
    )


async def test_a_server_that_drips_forever_still_meets_the_deadline(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    # Every read succeeds within the read timeout; only the overall deadline stops it.
    limits = FetchLimits(timeout_s=0.8, read_timeout_s=0.5)
    assert await reason(fetcher(client, limits), f"{pages.url}/drip/50?every=0.1") == (
        "timed out after 0.8 s"
    )


async def test_a_closed_port_is_a_connection_failure(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        assert await reason(fetcher(client), f"http://{LOOPBACK}:{port}/") == (
            f"could not connect to {LOOPBACK}"
        )


# size


async def test_a_huge_page_is_refused_from_its_declared_length(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    assert await reason(fetcher(client), f"{pages.url}/bytes/10000000") == (
        "too large: more than 200,000 bytes (10,000,000 declared)"
    )


async def test_a_huge_page_without_a_length_is_cut_off_while_streaming(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    assert await reason(fetcher(client), f"{pages.url}/bytes/10000000?chunked=1") == (
        "too large: more than 200,000 bytes"
    )


def test_a_gzip_bomb_is_refused_without_inflating_it(pages: PageServer) -> None:
    limit = 1_000_000
    inflated = 100_000_000
    compressed = gzip_bomb(inflated)
    assert len(compressed) < limit  # the wire limit alone would let it in

    # Measured in a process of its own: tracemalloc counts every thread, and this session
    # has other tests' servers whose threads may still be writing.
    probe = subprocess.run(  # noqa: S603 - this interpreter on a fixed script
        [
            sys.executable,
            str(Path(__file__).with_name("bomb_probe.py")),
            str(limit),
            str(inflated),
            FIRST,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    measured = json.loads(probe.stdout)

    assert measured["reason"] == "too large: more than 1,000,000 bytes once decompressed"
    # Held at the peak: the limit's worth of decoded pieces, one 64 KiB piece more, and the
    # HTTP client's own buffers (~0.4 MB, the same whatever the limit); never the 100 MB.
    assert measured["peak"] < limit + 1_000_000, f"peak {measured['peak']:,} bytes"


# redirects


async def test_a_redirect_loop_is_reported_as_one(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    assert await reason(fetcher(client), f"{pages.url}/redirect-loop") == (
        f"redirect loop: back to {pages.url}/redirect-loop"
    )


async def test_too_many_redirects(client: httpx.AsyncClient, pages: PageServer) -> None:
    assert await reason(fetcher(client), f"{pages.url}/redirect/10") == (
        "redirected more than 5 times"
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "blocked: 169.254.169.254 is not a public address",
        ),
        ("http://10.0.0.1/", "blocked: 10.0.0.1 is not a public address"),
        ("http://[::ffff:a9fe:a9fe]/", "is not a public address"),
        ("http://2130706433/", "blocked: 2130706433 is not an IPv4 address written as a.b.c.d"),
        ("file:///etc/passwd", "blocked: only http and https URLs can be fetched, not file:"),
    ],
)
async def test_a_redirect_from_an_allowed_host_to_a_private_address_is_blocked(
    target: str, expected: str, client: httpx.AsyncClient, pages: PageServer
) -> None:
    url = str(httpx.URL(f"{pages.url}/redirect-to", params={"url": target}))
    assert expected in await reason(fetcher(client), url)


async def test_a_redirect_to_a_name_for_loopback_is_blocked_before_it_connects(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    port = httpx.URL(pages.url).port
    target = f"http://localhost:{port}/never-reached"
    url = str(httpx.URL(f"{pages.url}/redirect-to", params={"url": target}))

    refused = await reason(fetcher(client), url)

    assert refused.startswith("blocked: localhost resolves to ")
    assert refused.endswith("which is not a public address")
    assert pages.hits("/redirect-to") >= 1
    assert pages.hits("/never-reached") == 0  # the same server, by a name not allowed


# status and type


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/nothing-here.html", "the server answered 404 Not Found"),
        ("/status/500", "the server answered 500 Internal Server Error"),
        ("/status/403", "the server answered 403 Forbidden"),
    ],
)
async def test_an_error_status_is_its_reason(
    path: str, expected: str, client: httpx.AsyncClient, pages: PageServer
) -> None:
    assert await reason(fetcher(client), f"{pages.url}{path}") == expected


@pytest.mark.parametrize("kind", ["image/png", "video/mp4", "application/zip"])
async def test_a_binary_type_is_refused_from_its_headers(
    kind: str, client: httpx.AsyncClient, pages: PageServer
) -> None:
    assert await reason(fetcher(client), f"{pages.url}/content-type/{kind}") == (
        f"unsupported content type {kind}"
    )


async def test_gathering_keeps_each_failure_beside_the_successes(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    sources = [
        f"{pages.url}/{FIRST}",
        f"{pages.url}/redirect-loop",
        f"{pages.url}/content-type/image/png",
        f"{pages.url}/gzip-bomb?size=50000000",
    ]
    gatherer = Gatherer(SourceAdapters(fetcher(client)), concurrency=4, deadline_s=5)
    records: list[SourceRecord] = []

    async def keep(record: SourceRecord) -> None:
        records.append(record)

    await gatherer.gather(
        "f" * 32, sources, done=set(), expansions={}, on_expansion=_unused, on_record=keep
    )

    outcomes = sorted((r.outcome for r in records), key=lambda o: o.index)
    assert [o.state for o in outcomes] == ["ok", "failed", "failed", "failed"]
    assert [o.reason for o in outcomes[1:]] == [
        f"redirect loop: back to {pages.url}/redirect-loop",
        "unsupported content type image/png",
        "too large: more than 200,000 bytes once decompressed",
    ]


async def _unused(expansion: Expansion) -> Expansion:
    raise AssertionError("no search in this job")


# content codings, decoded by the fetcher itself (MockTransport: exact bytes on the "wire")


class Wire(httpx.AsyncByteStream):
    """A response body as raw pieces, unread until the fetcher streams it."""

    def __init__(self, *pieces: bytes) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


async def served(
    *pieces: bytes, encoding: str | None = None, limits: FetchLimits = LIMITS
) -> tuple[bytes | str, httpx.Headers]:
    """The body (or the reason) a fetch of a response made of `pieces` gives."""
    seen: list[httpx.Headers] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        headers = {"Content-Type": "text/plain"}
        if encoding:
            headers["Content-Encoding"] = encoding
        return httpx.Response(200, headers=headers, stream=Wire(*pieces))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        fetcher = HttpFetcher(mock, EgressPolicy(["pages.test"]), limits)
        try:
            return (await fetcher.fetch("http://pages.test/")).body, seen[0]
        except SourceError as exc:
            return exc.reason, seen[0]


TEXT = b"The scouts dance for the site they found. " * 200


async def test_only_codings_it_can_bound_are_asked_for() -> None:
    _, headers = await served(TEXT)
    assert headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(TEXT)),
        ("x-gzip", gzip.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)[2:-4]),  # raw DEFLATE, as some servers send it
        ("gzip", gzip.compress(TEXT[:1000]) + gzip.compress(TEXT[1000:])),  # two members
        ("identity", TEXT),
        ("GZIP, identity", gzip.compress(TEXT)),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-members", "identity", "listed"],
)
async def test_codings_are_decoded(encoding: str, wire: bytes) -> None:
    pieces = [wire[i : i + 100] for i in range(0, len(wire), 100)]  # split mid-stream
    body, _ = await served(*pieces, encoding=encoding)
    assert body == TEXT


async def test_a_deflate_bomb_is_refused_too() -> None:
    bomb = zlib.compress(b" " * 20_000_000, 9)
    body, _ = await served(bomb, encoding="deflate")
    assert body == "too large: more than 200,000 bytes once decompressed"


@pytest.mark.parametrize(
    ("encoding", "wire", "expected"),
    [
        ("gzip", b"this is not gzip at all", "the response's compressed body is corrupt"),
        ("br", b"\x0b\x02\x80hello\x03", "unsupported content encoding br"),
        ("gzip, gzip", gzip.compress(gzip.compress(TEXT)), "unsupported content encoding"),
    ],
)
async def test_a_coding_it_cannot_read_is_a_reason(
    encoding: str, wire: bytes, expected: str
) -> None:
    body, _ = await served(wire, encoding=encoding)
    assert isinstance(body, str)
    assert expected in body


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (304, {}, "the server answered 304 Not Modified"),  # unasked-for
        (302, {}, "the server answered 302 Found"),  # a redirect to nowhere
        (204, {}, b""),
    ],
)
async def test_odd_statuses(status: int, headers: dict[str, str], expected: str | bytes) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        fetcher = HttpFetcher(mock, EgressPolicy(["pages.test"]))
        try:
            got: str | bytes = (await fetcher.fetch("http://pages.test/")).body
        except SourceError as exc:
            got = exc.reason
    assert got == expected


# the page cache


class Invocations(CachingFetcher):
    """Each fetch as one invocation sees it: its cache write (which runs beside the job's
    work) is settled before the fetch returns, as before the invocation ends."""

    async def fetch(self, url: str) -> FetchedPage:
        try:
            return await super().fetch(url)
        finally:
            await self.settle()


def caching(client: httpx.AsyncClient, blobs: Any) -> CachingFetcher:
    return Invocations(fetcher(client), blobs)


def stored(blobs: MemoryBlobStore, url: str) -> tuple[CachedPage, bytes]:
    """The entry and body the cache keeps for `url` (one object)."""
    return decode_entry(blobs.objects[page_key(url)])


async def store(blobs: MemoryBlobStore, url: str, entry: CachedPage, body: bytes) -> None:
    await blobs.replace(page_key(url), encode_entry(entry, body))


class CountedBlobStore(MemoryBlobStore):
    """Counts the store's calls as S3 would bill them: reads and writes, by operation."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        return await super().get(key)

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        self.calls.append("put")
        return await super().put(key, body, content_type=content_type)

    async def replace(
        self, key: str, body: bytes, *, content_type: str = "application/json"
    ) -> None:
        self.calls.append("put")
        await super().replace(key, body, content_type=content_type)

    def take(self) -> list[str]:
        taken, self.calls = self.calls, []
        return taken


async def test_a_page_is_handed_on_before_its_cache_entry_is_written(
    client: httpx.AsyncClient, pages: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = CachingFetcher(fetcher(client), blobs)
    url = f"{pages.url}/{FIRST}"

    page = await cache.fetch(url)
    assert page.body == sample(FIRST)
    assert await blobs.get(page_key(url)) is None  # still being written

    await cache.settle()
    assert await blobs.get(page_key(url)) is not None


async def test_a_second_fetch_revalidates_and_is_not_downloaded_again(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"

    first = await cache.fetch(url)
    second = await cache.fetch(url)

    assert first.cached is False
    assert second.cached is True
    assert second.body == first.body == sample(FIRST)
    assert second.final_url == url
    assert second.content_type == "text/html; charset=utf-8"
    assert [(r.status, r.conditional, r.body_bytes) for r in site.requests] == [
        (200, False, len(sample(FIRST))),
        (304, True, 0),  # asked "changed?", answered "no", sent no body
    ]
    entry, body = stored(blobs, url)
    assert entry.etag is not None
    assert entry.last_modified is not None
    assert body == sample(FIRST)
    assert list(blobs.objects) == [page_key(url)]  # entry and body: one object


async def test_spellings_of_one_url_share_an_entry(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    cache = caching(client, MemoryBlobStore())

    await cache.fetch(f"{site.url}/{FIRST}?utm_source=newsletter#top")
    again = await cache.fetch(f"{site.url}/{FIRST}")

    assert again.cached is True
    assert site.hits(f"/{FIRST}", conditional=True) == 1


async def test_a_changed_page_replaces_the_entry(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"
    await cache.fetch(url)
    changed = b"<html><body><p>The swarm has moved on.</p></body></html>"
    (site.root / FIRST).write_bytes(changed)

    page = await cache.fetch(url)
    again = await cache.fetch(url)

    assert page.cached is False
    assert page.body == changed
    assert again.cached is True
    assert again.body == changed
    assert stored(blobs, url)[1] == changed
    assert list(blobs.objects) == [page_key(url)]  # the old body went with the old entry
    assert [r.status for r in site.requests] == [200, 200, 304]


async def test_last_modified_alone_revalidates(client: httpx.AsyncClient, site: PageServer) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"
    await cache.fetch(url)
    entry, body = stored(blobs, url)
    await store(blobs, url, entry.model_copy(update={"etag": None}), body)

    page = await cache.fetch(url)

    assert page.cached is True
    assert [(r.status, r.conditional) for r in site.requests] == [(200, False), (304, True)]


async def test_a_page_without_validators_is_not_cached(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)

    first = await cache.fetch(f"{site.url}/bytes/1000")
    second = await cache.fetch(f"{site.url}/bytes/1000")

    assert (first.cached, second.cached) == (False, False)
    assert blobs.objects == {}


async def test_a_failed_fetch_is_not_cached_and_keeps_its_reason(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    with pytest.raises(SourceError, match="404 Not Found"):
        await caching(client, blobs).fetch(f"{site.url}/missing.html")
    assert blobs.objects == {}


def _garbled(raw: bytes) -> bytes:
    return b"{not json" + raw[raw.index(b"\n") :]


def _cut_short(raw: bytes) -> bytes:
    return raw[: len(raw) - 10]


def _another_body(raw: bytes) -> bytes:
    """The same size, other bytes: only the SHA-256 tells."""
    return raw[:-1] + (b"?" if raw[-1:] != b"?" else b"!")


def _entry_only(raw: bytes) -> bytes:
    return raw[: raw.index(b"\n")]


@pytest.mark.parametrize("damage", [_garbled, _cut_short, _another_body, _entry_only])
async def test_a_damaged_entry_is_a_miss_that_fetches_afresh(
    client: httpx.AsyncClient,
    site: PageServer,
    damage: Callable[[bytes], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"
    await cache.fetch(url)
    blobs.objects[page_key(url)] = damage(blobs.objects[page_key(url)])

    damaged = await cache.fetch(url)  # not even asked "changed?": nothing to vouch for
    healed = await cache.fetch(url)

    assert (damaged.cached, healed.cached) == (False, True)
    assert damaged.body == healed.body == sample(FIRST)
    assert "page cache entry damaged" in caplog.messages
    assert [(r.status, r.conditional) for r in site.requests] == [
        (200, False),
        (200, False),
        (304, True),
    ]


async def test_an_entry_of_the_earlier_layout_is_never_read(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"
    # What the cache kept before (an entry in JSON, its body in cache/bodies/), here naming
    # a body that is not there: it is another key, so it is not read at all.
    old = page_key(url) + ".json"
    blobs.objects[old] = b'{"version": 1, "body_key": "cache/bodies/0"}'

    page = await cache.fetch(url)

    assert page.cached is False
    assert page.body == sample(FIRST)
    assert sorted(blobs.objects) == sorted([old, page_key(url)])


async def test_a_304_from_another_page_than_the_cached_one_is_not_trusted(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = MemoryBlobStore()
    cache = caching(client, blobs)
    second = sorted(p.name for p in site.root.glob("0*.html"))[1]
    url = f"{site.url}/redirect/1?to=/{FIRST}"
    await cache.fetch(url)
    # The redirect now leads elsewhere; the old validators must not vouch for that page.
    entry, body = stored(blobs, url)
    await store(blobs, url, entry.model_copy(update={"final_url": f"{site.url}/{second}"}), body)

    page = await cache.fetch(url)

    assert page.cached is False
    assert page.body == sample(FIRST)


class BrokenBlobStore(MemoryBlobStore):
    """Every call fails the way S3 does when it is unavailable."""

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable(f"S3 get {key} failed: SlowDown")

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        raise StorageUnavailable(f"S3 put {key} failed: SlowDown")

    async def replace(
        self, key: str, body: bytes, *, content_type: str = "application/json"
    ) -> None:
        raise StorageUnavailable(f"S3 replace {key} failed: SlowDown")


async def test_a_storage_failure_never_fails_the_fetch(
    client: httpx.AsyncClient, site: PageServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = caching(client, BrokenBlobStore())

    page = await cache.fetch(f"{site.url}/{FIRST}")

    assert page.body == sample(FIRST)
    assert page.cached is False
    assert "page cache unavailable" in caplog.messages
    assert "page cache not written" in caplog.messages


async def test_the_cache_on_s3(
    client: httpx.AsyncClient, site: PageServer, s3: Any, bucket: str
) -> None:
    blobs = S3BlobStore(s3, bucket)
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"

    first = await cache.fetch(url)
    second = await cache.fetch(url)
    (site.root / FIRST).write_bytes(b"<p>new</p>")
    third = await cache.fetch(url)

    assert (first.cached, second.cached, third.cached) == (False, True, False)
    assert third.body == b"<p>new</p>"
    assert await blobs.list(PAGES) == [page_key(url)]
    assert await blobs.list("cache/") == [page_key(url)]  # one object per URL, nothing else
    entry, body = decode_entry(await blobs.get(page_key(url)) or b"")
    assert body == b"<p>new</p>"  # replace overwrote the entry, body and all
    assert entry.size == len(body)


# freshness: a page its server says is fresh is not asked for again


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fresh_site(tmp_path: Path) -> Iterator[PageServer]:
    root = tmp_path / "site"
    shutil.copytree(SAMPLES, root)
    server = PageServer(root, cache_control="max-age=300").start()
    yield server
    server.stop()


async def test_a_page_fresh_by_its_max_age_is_reused_without_a_request(
    client: httpx.AsyncClient, fresh_site: PageServer
) -> None:
    clock, blobs = Clock(), MemoryBlobStore()
    cache = Invocations(fetcher(client), blobs, clock=clock)
    url = f"{fresh_site.url}/{FIRST}"

    first = await cache.fetch(url)
    clock.now += timedelta(seconds=299)
    again = await cache.fetch(url)

    assert again.cached is True
    assert again.body == first.body == sample(FIRST)
    assert len(fresh_site.requests) == 1  # the second fetch asked nothing

    clock.now += timedelta(seconds=2)  # now stale: asked "changed?", and renewed by the 304
    stale = await cache.fetch(url)
    clock.now += timedelta(seconds=299)
    renewed = await cache.fetch(url)

    assert stale.cached is True
    assert renewed.cached is True
    assert [(r.status, r.conditional) for r in fresh_site.requests] == [(200, False), (304, True)]


async def test_the_freshness_a_server_claims_is_capped(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shutil.copytree(SAMPLES, tmp_path / "site")
    server = PageServer(tmp_path / "site", cache_control="max-age=31536000").start()
    try:
        clock, blobs = Clock(), MemoryBlobStore()
        cache = Invocations(fetcher(client), blobs, clock=clock, max_fresh_s=60)
        url = f"{server.url}/{FIRST}"
        await cache.fetch(url)
        clock.now += timedelta(seconds=61)
        await cache.fetch(url)
        assert [(r.status, r.conditional) for r in server.requests] == [(200, False), (304, True)]
    finally:
        server.stop()


# what the cache costs in store calls


async def test_a_page_costs_one_read_and_one_write_then_one_read_a_fetch(
    client: httpx.AsyncClient, site: PageServer
) -> None:
    blobs = CountedBlobStore()
    cache = caching(client, blobs)
    url = f"{site.url}/{FIRST}"

    cold = await cache.fetch(url)
    assert blobs.take() == ["get", "put"]  # a miss, then the entry with its body
    revalidated = await cache.fetch(url)
    assert blobs.take() == ["get"]  # a 304 that renews nothing writes nothing

    assert (cold.cached, revalidated.cached) == (False, True)
    assert revalidated.body == sample(FIRST)
    assert [(r.status, r.conditional) for r in site.requests] == [(200, False), (304, True)]


async def test_a_fresh_page_costs_one_read_and_no_request(
    client: httpx.AsyncClient, fresh_site: PageServer
) -> None:
    clock, blobs = Clock(), CountedBlobStore()
    cache = Invocations(fetcher(client), blobs, clock=clock)
    url = f"{fresh_site.url}/{FIRST}"

    await cache.fetch(url)
    assert blobs.take() == ["get", "put"]
    clock.now += timedelta(seconds=60)
    fresh = await cache.fetch(url)
    assert blobs.take() == ["get"]
    assert len(fresh_site.requests) == 1  # the page server was not asked

    clock.now += timedelta(seconds=300)  # stale: a 304 that renews its freshness
    renewed = await cache.fetch(url)
    assert blobs.take() == ["get", "put"]  # the whole object again, with its new fresh_until
    clock.now += timedelta(seconds=299)
    again = await cache.fetch(url)
    assert blobs.take() == ["get"]

    assert (fresh.cached, renewed.cached, again.cached) == (True, True, True)
    assert fresh.body == renewed.body == again.body == sample(FIRST)
    assert [(r.status, r.conditional) for r in fresh_site.requests] == [(200, False), (304, True)]
    entry, _ = stored(blobs, url)
    assert entry.fresh_until == clock.now - timedelta(seconds=299) + timedelta(seconds=300)


@pytest.mark.parametrize(
    ("cache_control", "age", "fresh_s"),
    [
        (None, None, 0.0),  # says nothing: revalidate (no heuristic freshness)
        ("max-age=300", None, 300.0),
        ("max-age=300", "120", 180.0),  # an upstream cache held it for 2 minutes already
        ("max-age=300", "900", 0.0),
        ("public, max-age=60, s-maxage=600", None, 600.0),  # this cache is shared
        ('max-age="90"', None, 90.0),
        ("no-cache, max-age=300", None, 0.0),  # keep, but always ask
        ("no-store", None, None),  # do not keep at all
        ("private, max-age=300", None, None),  # not for a cache shared by every user
        ("MAX-AGE=5", None, 5.0),
        ("max-age=soon", None, 0.0),
    ],
)
def test_freshness_follows_cache_control_as_a_shared_cache(
    cache_control: str | None, age: str | None, fresh_s: float | None
) -> None:
    assert freshness_s(cache_control, age) == fresh_s
