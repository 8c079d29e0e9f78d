"""Retrieval: fetch one source over HTTP, within size and time limits.

`HttpFetcher` follows redirects by hand so every hop passes the egress policy, and reads the
body as it arrives on the wire: it stops the moment the body passes the size limit, and it
inflates gzip and deflate itself, a bounded piece at a time, so a small compressed "bomb"
never becomes a big buffer. Every failure it knows of becomes a SourceError whose reason a
user can read, a URL or `Location` httpx cannot request included. (`brief.sources` gathers
a job's sources, and is where anything else one source raises becomes its failure.)
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import httpx

from brief.egress import EgressPolicy, GuardedClient
from brief.errors import SourceError, UnsupportedContent
from brief.ports import FetchedPage
from brief.urls import host_problem, port_problem, unusable

log = logging.getLogger(__name__)

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CONDITIONAL: Final = frozenset({"if-none-match", "if-modified-since"})
# Only codings this module can inflate a bounded piece at a time (no br: its decoder here
# cannot cap its output), so a server that honours the header never sends anything else.
ACCEPT_ENCODING: Final = "gzip, deflate"

# Media types no extractor turns into text; refused from the headers, before the body.
_BINARY_FAMILIES: Final = ("image/", "video/", "audio/", "font/", "model/")
_BINARY_TYPES: Final = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/java-archive",
        "application/vnd.android.package-archive",
        "application/x-msdownload",
        "application/x-iso9660-image",
        "application/wasm",
    }
)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How much of the network one source may use.

    `timeout_s` bounds the whole fetch (every hop, headers and body), so a server that sends
    one byte a second cannot hold a source forever; `connect_timeout_s` bounds one connection
    (DNS, TCP, TLS) and `read_timeout_s` the longest silence between two reads. `max_bytes`
    holds on the wire and again after decompression.
    """

    timeout_s: float = 10.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0

    def request_timeout(self) -> httpx.Timeout:
        """The per-request httpx timeouts these limits imply."""
        read = min(self.read_timeout_s, self.timeout_s)
        return httpx.Timeout(
            connect=min(self.connect_timeout_s, self.timeout_s),
            read=read,
            write=read,
            pool=self.timeout_s,
        )


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What one GET brought back once redirects were followed: a page, or "not modified"."""

    url: str
    final_url: str
    status: int  # 2xx, or 304 when the request was conditional
    content_type: str | None
    etag: str | None
    last_modified: str | None
    body: bytes  # empty for 304
    elapsed_ms: int
    cache_control: str | None = None  # with `age`, how long the page may be reused unasked
    age: str | None = None

    @property
    def not_modified(self) -> bool:
        """True when a conditional request found the page unchanged (304)."""
        return self.status == HTTPStatus.NOT_MODIFIED

    def page(self) -> FetchedPage:
        """The page as the Fetcher port returns it."""
        return FetchedPage(self.url, self.final_url, self.content_type, self.body, self.elapsed_ms)


class HttpFetcher:
    """Fetches over one shared httpx client (built once per container, not per request).

    Give it the client from `brief.egress.guarded_client`: its connections are checked against
    the same policy, so no DNS answer can change between check and connect, and the fetcher
    itself only pre-checks each hop (scheme, host, literal address) before any connection.
    Any other client (a MockTransport in tests, say) gets the host's addresses checked before
    each request instead: racy against DNS rebinding, never silently unchecked.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: EgressPolicy,
        limits: FetchLimits = FetchLimits(),  # frozen, so sharing is safe
    ) -> None:
        self._client = client
        self._policy = policy
        self._limits = limits
        hooks = client.event_hooks
        if _hold_location not in hooks["response"]:
            client.event_hooks = {**hooks, "response": [_hold_location, *hooks["response"]]}
        guarded = isinstance(client, GuardedClient)
        self._check = policy.check if guarded else policy.check_now

    async def settle(self) -> None:
        """Nothing runs in the background here."""

    async def fetch(self, url: str) -> FetchedPage:
        """GET `url`; raises SourceError with a reason a user understands."""
        return (await self.get(url)).page()

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> HttpResult:
        """GET `url` with extra request `headers` (e.g. If-None-Match), following redirects.

        A conditional request may come back `not_modified` (304, empty body); anything else
        that is not a whole 2xx page within the limits raises SourceError.
        """
        started = time.perf_counter()
        limits = self._limits
        try:
            async with asyncio.timeout(limits.timeout_s):
                return await self._follow(url, dict(headers or {}), started)
        except TimeoutError as exc:
            raise SourceError(f"timed out after {limits.timeout_s:g} s") from exc

    async def _follow(self, first: str, headers: dict[str, str], started: float) -> HttpResult:
        url = _requestable(first)
        conditional = any(name.lower() in _CONDITIONAL for name in headers)
        headers = {**headers, "Accept-Encoding": ACCEPT_ENCODING}
        seen: set[str] = set()
        hops = 0
        while True:
            await self._check(url)
            seen.add(str(url))
            try:
                async with self._client.stream(
                    "GET",
                    url,
                    headers=headers,
                    follow_redirects=False,
                    timeout=self._limits.request_timeout(),
                ) as response:
                    status = response.status_code
                    location = response.extensions.get(_LOCATION)
                    if status in _REDIRECTS and location:
                        target = _requestable(location, base=url)
                        if str(target) in seen:
                            raise SourceError(f"redirect loop: back to {target}")
                        if hops >= self._limits.max_redirects:
                            raise SourceError(
                                f"redirected more than {self._limits.max_redirects} times"
                            )
                        hops += 1
                        url = target
                        continue
                    if not (200 <= status < 300 or (status == 304 and conditional)):
                        raise SourceError(f"the server answered {_status_line(response)}")
                    content_type = response.headers.get("content-type")
                    if status != 304:
                        _refuse_binary(content_type)
                    body = b"" if status == 304 else await self._read(response)
                    return HttpResult(
                        url=first,
                        final_url=str(url),
                        status=status,
                        content_type=content_type,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                        body=body,
                        cache_control=response.headers.get("cache-control"),
                        age=response.headers.get("age"),
                        elapsed_ms=int((time.perf_counter() - started) * 1000),
                    )
            except httpx.HTTPError as exc:
                raise SourceError(self._reason(exc, url)) from exc

    def _reason(self, exc: httpx.HTTPError, url: httpx.URL) -> str:
        timeout = self._limits.request_timeout()
        host = url.host
        if isinstance(exc, httpx.ConnectTimeout):
            return f"timed out connecting to {host} after {timeout.connect:g} s"
        if isinstance(exc, httpx.ReadTimeout):
            return f"timed out: {host} sent nothing for {timeout.read:g} s"
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out after {self._limits.timeout_s:g} s"
        if isinstance(exc, httpx.ConnectError):
            return f"could not connect to {host}"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"{host} broke off the response or did not speak HTTP"
        if isinstance(exc, httpx.NetworkError):
            return f"the connection to {host} failed"
        return f"could not fetch from {host}: {type(exc).__name__}"

    async def _read(self, response: httpx.Response) -> bytes:
        """The body, decoded, never holding more than the limit plus one piece."""
        limit = self._limits.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise SourceError(f"too large: more than {limit:,} bytes ({int(declared):,} declared)")
        if response.is_stream_consumed:
            # Built in memory (a MockTransport's `Response(content=...)`): httpx has already
            # read and decoded it, so only the size is left to check.
            if len(response.content) > limit:
                raise SourceError(f"too large: more than {limit:,} bytes")
            return response.content
        decoder = _decoder(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        wire = size = 0
        async for raw in response.aiter_raw():
            wire += len(raw)
            if wire > limit:
                raise SourceError(f"too large: more than {limit:,} bytes")
            for piece in decoder.decode(raw):
                size += len(piece)
                if size > limit:
                    raise SourceError(f"too large: more than {limit:,} bytes once decompressed")
                chunks.append(piece)
        return b"".join(chunks)


_LOCATION: Final = "brief.location"


async def _hold_location(response: httpx.Response) -> None:
    """Move a redirect's `Location` out of httpx's sight, into the response's extensions.

    A client that does not follow redirects still builds the next request of each one, so a
    `Location` httpx cannot parse or decode (`http://xn--n3h.net/`) raises from inside the
    request, as a bare IDNA error or an unexplained protocol error. `HttpFetcher` resolves the
    held value itself and names what is wrong with it. A client hook: it runs before that step.
    """
    if response.status_code in _REDIRECTS and "location" in response.headers:
        response.extensions[_LOCATION] = response.headers["location"]
        del response.headers["location"]


def _requestable(text: str, *, base: httpx.URL | None = None) -> httpx.URL:
    """`text` (a redirect's `Location`, resolved against `base`) as the URL to request.

    Raises SourceError naming what no request could carry: what httpx refuses to parse, and
    what it parses but would fail on later, outside any reason a user could read (an `xn--`
    host it cannot decode, a port the socket refuses).
    """
    problem: str | None
    try:
        url = (httpx.URL(text) if base is None else base.join(text)).copy_with(fragment=None)
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: UnicodeError, IDNAError
        problem = unusable(text) or str(exc) or type(exc).__name__
    else:
        problem = host_problem(url.raw_host.decode("ascii")) or port_problem(url.port)
        if problem is None:
            return url
    if base is None:
        raise SourceError(f"not a valid URL: {problem}")
    raise SourceError(f"redirected to an invalid URL: {problem}")


def _status_line(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    if not phrase:
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = ""
    return f"{response.status_code} {phrase}".strip()


def _refuse_binary(content_type: str | None) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.startswith(_BINARY_FAMILIES) or media in _BINARY_TYPES:
        raise UnsupportedContent(f"unsupported content type {media}")


_PIECE: Final = 64 * 1024  # the most one inflate step produces


class _Identity:
    """No content coding: bytes pass through."""

    def decode(self, data: bytes) -> Iterator[bytes]:
        yield data


class _Inflate:
    """Inflates gzip or deflate incrementally, in pieces of at most 64 KiB.

    The caller counts the pieces and stops taking them at the limit; input past that point
    is never inflated, so a bomb costs the limit plus one piece, not its inflated size.
    """

    def __init__(self, coding: str) -> None:
        self._gzip = coding in {"gzip", "x-gzip"}
        self._z = self._new()
        self._raw_fallback = not self._gzip  # some servers send "deflate" without zlib header
        self._started = False

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self._z.decompress(data, _PIECE)
            except zlib.error:
                if self._raw_fallback and not self._started:
                    self._z, self._raw_fallback = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise SourceError("the response's compressed body is corrupt") from None
            self._started = True
            if piece:
                yield piece
            if self._z.unconsumed_tail:
                data = self._z.unconsumed_tail
            elif self._gzip and self._z.eof and self._z.unused_data:
                data, self._z = self._z.unused_data, self._new()  # the next gzip member
            else:
                data = b""


def _decoder(content_encoding: str) -> _Identity | _Inflate:
    codings = [
        c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() != "identity"
    ]
    codings = [c for c in codings if c]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in {"gzip", "x-gzip", "deflate"}:
        return _Inflate(codings[0])
    raise UnsupportedContent(f"unsupported content encoding {content_encoding.strip()}")
