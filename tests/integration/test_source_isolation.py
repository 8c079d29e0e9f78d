"""Whatever one source's URL or its server's answers, only that source fails: a property.

Hypothesis draws a source (a URL with IDN and punycode hosts, odd ports, userinfo, IPv6 zones,
percent-escapes, huge and empty parts; fetched as written or found by a web search) and what
the server answers each request (status, headers, `Location` above all, body). A raw server on
127.0.0.1 sends those bytes as drawn, so the real guarded client, httpcore, h11 and the
fetcher's own redirect handling all run. The job is gathered as the research stage gathers it
(`Gatherer` over `CachingFetcher` over `HttpFetcher`), beside a good source: every case ends
as that source's record, `ok` or `failed` with a reason, and the good source is unharmed.

Below the egress guard every connection goes to 127.0.0.1: a port in range reaches the raw
server whatever the URL says, one out of range is handed to the socket as the URL gives it.

The cases users met come first, as a user sees them: a job with one such source and one good
one ends `done`, its report citing the good one and the bad one `failed` with its reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socketserver
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue
from brief.egress import EgressPolicy, IPAddress, guarded_client
from brief.models import Expansion, SearchSource, SourceRecord, SourceSpec
from brief.pagecache import CachingFetcher
from brief.ports import SearchHit
from brief.retrieval import FetchLimits, HttpFetcher
from brief.sources import Gatherer, SourceAdapters
from brief_testing.pages import PageServer
from tests.functional.world import World

LOOPBACK = "127.0.0.1"
JOB_ID = "5" * 32
PORT = "{PORT}"  # the raw server's port, in drawn text
GOOD_PAGE = (
    b"<html><head><title>Good page</title></head><body><article><h1>Good page</h1>"
    b"<p>Glaciers move downhill because ice deforms slowly under its own weight.</p>"
    b"</article></body></html>"
)


QUESTION = "Why do glaciers move downhill?"
U2603 = "(Codepoint U+2603 at position 1 of '☃' not allowed)"
U1F4A9 = "(Codepoint U+1F4A9 at position 1 of '💩' not allowed)"


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer().start()
    yield server
    server.stop()


@dataclass
class LoopbackWorld(World):
    """The in-memory pipeline retrieving over `http` (the production client, to loopback
    pages), with a web search that finds `found`."""

    http: HttpFetcher | None = None
    found: list[str] = field(default_factory=list)

    def adapters(self) -> SourceAdapters:
        assert self.http is not None
        return SourceAdapters(
            self.http, search={"found": Found(self.found)}, default_search="found"
        )


class Found:
    """A web search that finds the URLs it is given, whatever they are."""

    name = "found"

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        return [SearchHit(url=u, title="found") for u in self.urls[:limit]]


@pytest.fixture
async def world() -> AsyncIterator[LoopbackWorld]:
    policy = EgressPolicy([LOOPBACK])
    async with guarded_client(
        policy,
        timeout=httpx.Timeout(5.0),
        limits=httpx.Limits(max_connections=8),
        headers={"User-Agent": "BriefTest"},
    ) as client:
        limits = FetchLimits(timeout_s=5.0, connect_timeout_s=1.0)
        yield LoopbackWorld(
            MemoryBlobStore(), MemoryTaskQueue(), {}, http=HttpFetcher(client, policy, limits)
        )


async def one_bad_one_good(
    world: LoopbackWorld, pages: PageServer, bad: Any
) -> tuple[str | None, str]:
    """Run a job of `bad` and a good page to its end: the bad source's state and reason."""
    good = pages.pages()[0]
    job_id = await world.submit(QUESTION, [bad, good])
    await world.drain()

    view = await world.store.view(job_id)
    assert view.state == "done", view.reason
    report = await world.store.report(job_id)
    assert report is not None
    assert [c.url for c in report.citations] == [good]
    assert [s.state for s in view.sources] == ["failed", "ok"]
    return view.sources[0].reason, view.sources[0].url


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:70000/", "port 70000 is out of range"),
        ("http://127.0.0.1:-1/", "port -1 is out of range"),
        ("http://xn--n3h.net/", f"the host name xn--n3h.net cannot be decoded {U2603}"),
        (
            "http://xn--zz.example/",
            "the host name xn--zz.example cannot be decoded (Invalid A-label)",
        ),
    ],
)
async def test_a_redirect_no_request_can_follow_fails_only_its_source(
    world: LoopbackWorld, pages: PageServer, target: str, reason: str
) -> None:
    bad = f"{pages.url}/redirect-to?{urlencode({'url': target})}"
    assert await one_bad_one_good(world, pages, bad) == (
        f"redirected to an invalid URL: {reason}",
        bad,
    )


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        ("http://☃.net/", f"the host name ☃.net cannot be encoded {U2603}"),
        ("http://💩.la/", f"the host name 💩.la cannot be encoded {U1F4A9}"),
        ("http://xn--n3h.net/", f"the host name xn--n3h.net cannot be decoded {U2603}"),
        ("http://127.0.0.1:70000/", "port 70000 is out of range"),
    ],
)
async def test_a_search_result_no_request_can_fetch_fails_only_its_source(
    world: LoopbackWorld, pages: PageServer, found: str, reason: str
) -> None:
    world.found.append(found)
    assert await one_bad_one_good(world, pages, {"search": "glaciers", "limit": 1}) == (
        f"not a valid URL: {reason}",
        found,
    )


@dataclass(frozen=True)
class Answer:
    """One response, exactly as the raw server writes it."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def wire(self) -> bytes:
        head = [f"HTTP/1.1 {self.status} Drawn".encode(), b"Connection: close"]
        head += [name + b": " + value for name, value in self.headers]
        return b"\r\n".join(head) + b"\r\n\r\n" + self.body


GOOD = Answer(200, ((b"Content-Type", b"text/html; charset=utf-8"),), GOOD_PAGE)


class RawServer(socketserver.ThreadingTCPServer):
    """Answers `/good` with a good page and every other request with the next scripted answer."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _RawHandler)
        self.script: deque[Answer] = deque()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def next_answer(self, target: bytes) -> Answer:
        if target.split(b"?", 1)[0] == b"/good":
            return GOOD
        with self.lock:
            return self.script.popleft() if self.script else GOOD


class _RawHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn = self.request
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece or (not data and not piece[:1].isalpha()):
                    return  # gone, or not HTTP (a TLS hello for an https URL): hang up
                data += piece
            target = data.split(b"\r\n", 1)[0].split(b" ")[1:2] or [b"/"]
            assert isinstance(self.server, RawServer)
            conn.sendall(self.server.next_answer(target[0]).wire())
        except OSError:
            return


class ToLoopback(httpcore.AsyncNetworkBackend):
    """Under the guard: every connection to 127.0.0.1, in-range ports to the raw server."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        port = self._port if 0 <= port <= 65535 else port
        return await self._inner.connect_tcp(LOOPBACK, port, timeout=timeout)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("the guard never asks for a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class AnyHost(EgressPolicy):
    """Every host passes as an allowed one (the backend below keeps it all on loopback)."""

    def allows(self, host: str) -> bool:
        return True


async def _loopback(host: str, port: int) -> list[IPAddress]:
    return [ipaddress.IPv4Address(LOOPBACK)]


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of `choices`, each as often as its weight says (`one_of` draws its branches alike);
    the first is what a failing example shrinks towards."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda chosen: chosen
    )


def _words(text: str) -> list[str]:
    """The fixtures below, written as words: `split()` of `text`."""
    return text.split()


# What a URL is made of: mostly one that reaches the server, with the odd and broken parts.
_PRINTABLE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
_SCHEMES = _weighted(
    (6, st.just("http://")),
    (1, st.sampled_from(_words("HTTP:// https:// ftp:// // http: http:/ javascript: file:///"))),
    (1, st.sampled_from(["", "ws://", "h\x00ttp://", " http://"])),
)
_USERINFO = _weighted(
    (4, st.just("")), (1, st.sampled_from(_words("user@ user:pass@ u%40v:p@ ü:ö@ @ a@b@ :@")))
)
_ODD_HOSTS = st.sampled_from(
    [
        *_words(
            "xn--n3h.net ☃.net 💩.la i❤.ws XN--N3H.NET www.xn--n3h.net xn--zz.com xn-- xn--a.com "
            "xn--fiqs8s.a_b.com ß.de xn--zca.de 中国.cn localhost Pages.TEST. a..b %41.test "
            "%zz.test [::1] [::1%25lo] [fe80::1%25eth0] [::1%eth0] [::ffff:127.0.0.1] [v1.x] "
            "[::1 ::1 0x7f.1 2130706433 127.1 256.0.0.1"
        ),
        *["", "ex ample.test", "a" * 64 + ".test", "a." * 130 + "test"],
    ]
)
_HOSTS = _weighted((3, st.just(LOOPBACK)), (4, _ODD_HOSTS), (1, _PRINTABLE))
_PORTS = _weighted(
    (4, st.just(f":{PORT}")),
    (1, st.sampled_from(["", *_words(":70000 :65536 :-1 :0 : :99999999999999999999")])),
    (1, st.sampled_from([": 80", *_words(f":+80 :8_0 :x :{PORT}{PORT} :٣")])),
    (1, st.integers(-(10**6), 10**6).map(lambda n: f":{n}")),
)
_SEGMENTS = _weighted(
    (3, st.sampled_from(_words("a good %2e %2E%2E .. . %zz %ff %00 é %E2%98%83 \\"))),
    (1, st.sampled_from(["\u2028", " ", "x" * 3000])),
    (1, _PRINTABLE),
)
_PATHS = st.lists(_SEGMENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
_TAILS = st.sampled_from(["", "", "?q=1", "?%zz=%ff", "#top", "?a b#c d", "#%", "?" + "q" * 70_000])
_COMPOSED = st.builds(
    lambda *parts: "".join(parts), _SCHEMES, _USERINFO, _HOSTS, _PORTS, _PATHS, _TAILS
)
URLS = _weighted(
    (3, st.just(f"http://{LOOPBACK}:{PORT}/start")),
    (6, _COMPOSED),
    (1, st.text(max_size=40)),
    (1, st.sampled_from(["", " ", "http://", "//", "?", "#", f"http://:{PORT}/"])),
)
LOCATIONS = _weighted(
    (6, _COMPOSED),
    (2, _PATHS),
    (1, st.text(max_size=40)),
    (1, st.sampled_from(["", "/good", "?x", "#frag", "../..", f"//{LOOPBACK}", f"//:{PORT}"])),
)

# What the server answers: mostly a redirect somewhere, else any status, headers and body.
_STATUSES = _weighted(
    (3, st.sampled_from([301, 302, 303, 307, 308])),
    (2, st.just(200)),
    (1, st.sampled_from([203, 204, 206, 299, 300, 304, 305, 399, 404, 500, 999, 101, 199])),
)
_TYPES = st.sampled_from(
    _words(
        "text/html;charset=utf-8 text/html;charset=nope text/plain;charset=utf-16 image/png "
        "application/pdf text/html;;;charset= text/plain;charset=base64 */* text/html;charset= "
        'text/html;charset=utf-32 text/html;charset="" text/html;charset=idna application/x-gzip '
        "text/plain;charset=punycode text/plain;charset=undefined text/html;charset=rot13"
    )
) | st.text(max_size=20)
_HEADER_NAMES = st.sampled_from(
    _words(
        "ETag ETag Last-Modified Cache-Control Content-Length Content-Encoding Transfer-Encoding "
        "Age Set-Cookie Location Content-Type X-Drawn"
    )
).map(str.encode)
_TEXT_VALUES = st.sampled_from(
    [
        *_words(
            '0 5 -1 99999999999 ² gzip deflate br gzip,gzip chunked "etag" W/ max-age=60 '
            "no-store max-age=99999999999999999999 s-maxage=x"
        ),
        *["", "Thu, 01 Jan 1970 00:00:00 GMT", "a=b; Domain=127.0.0.1; Max-Age=x"],
    ]
) | st.text(max_size=20)
_HEADER_VALUES = _TEXT_VALUES.map(str.encode) | st.binary(max_size=12)
_BODIES = st.sampled_from(
    [GOOD_PAGE, b"", b"%PDF-1.4 not really", b"\x1f\x8b\x08\x00broken", b"\xff\xfe<\x00h\x00"]
) | st.binary(max_size=200)
_ANSWERS = st.builds(
    Answer,
    status=_STATUSES,
    headers=st.tuples(
        st.tuples(st.just(b"Location"), LOCATIONS.map(str.encode)),
        st.tuples(st.just(b"Content-Type"), _TYPES.map(str.encode)),
        st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=3),
    ).map(lambda drawn: (drawn[0], drawn[1], *drawn[2])),
    body=_BODIES,
)


class Crashes(logging.Handler):
    """Keeps the core's error lines (the boundary logs each source it had to catch)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Harness:
    """One event loop, one guarded client and one raw server for every example."""

    def __init__(self) -> None:
        self.crashes = Crashes()
        logging.getLogger("brief").addHandler(self.crashes)
        self.server = RawServer()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.runner = asyncio.Runner()
        policy = AnyHost(resolver=_loopback)
        self.client = self.runner.run(self._client(policy))
        self.policy = policy
        # One page cache for the whole run, as a container keeps one: a later example may
        # revalidate what an earlier one stored, and meet a drawn answer to that (a 304...).
        self.cache = MemoryBlobStore()

    async def _client(self, policy: EgressPolicy) -> httpx.AsyncClient:
        return guarded_client(
            policy,
            timeout=httpx.Timeout(3.0),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=0),
            headers={"User-Agent": "BriefTest"},
            network_backend=ToLoopback(self.server.port),
        )

    def close(self) -> None:
        logging.getLogger("brief").removeHandler(self.crashes)
        self.runner.run(self.client.aclose())
        self.runner.close()
        self.server.shutdown()
        self.server.server_close()

    def gather(self, source: str, answers: list[Answer], *, searched: bool) -> list[SourceRecord]:
        """The drawn source and a good one, gathered as the research stage gathers them."""
        with self.server.lock:
            self.server.script = deque(answers)
        url = source.replace(PORT, str(self.server.port))
        good = f"http://{LOOPBACK}:{self.server.port}/good"
        limits = FetchLimits(timeout_s=3.0, max_bytes=50_000, connect_timeout_s=1.0)
        fetcher = CachingFetcher(HttpFetcher(self.client, self.policy, limits), self.cache)
        spec: SourceSpec = SearchSource(search="glaciers", limit=1) if searched else url
        adapters = SourceAdapters(fetcher, search={"found": Found([url])}, default_search="found")
        gatherer = Gatherer(adapters, concurrency=4, deadline_s=5.0)
        records: list[SourceRecord] = []
        self.crashes.records.clear()

        async def keep(record: SourceRecord) -> None:
            records.append(record)

        async def run() -> None:
            try:
                await gatherer.gather(
                    JOB_ID,
                    [spec, good],
                    done=set(),
                    expansions={},
                    on_expansion=_as_stored,
                    on_record=keep,
                )
            finally:
                await gatherer.settle()

        self.runner.run(run())
        return records


async def _as_stored(expansion: Expansion) -> Expansion:
    return expansion


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    built = Harness()
    yield built
    built.close()


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=URLS, answers=st.lists(_ANSWERS, max_size=4), searched=st.booleans())
def test_one_source_ends_as_its_own_record_whatever_its_url_and_server(
    harness: Harness,
    source: str,
    answers: list[Answer],
    searched: bool,
) -> None:
    records = harness.gather(source, answers, searched=searched)

    by_index = {r.outcome.index: r.outcome for r in records}
    assert sorted(by_index) == [0, 1], [r.outcome for r in records]
    assert by_index[1].state == "ok", by_index[1]
    drawn = by_index[0]
    assert drawn.state in {"ok", "cached", "failed"}
    if drawn.state == "failed":
        assert drawn.reason
    # Each known way to fail has its own reason: the boundary's last resort never ran.
    assert not harness.crashes.records, [r.getMessage() for r in harness.crashes.records]
