"""The egress policy: a user's URL must never reach Brief's own network or the cloud metadata.

Every test runs on a fake resolver (the loop's `getaddrinfo` is replaced), so no test asks
real DNS, and every fetch runs on a fake network below the guard (`FakeNetwork`, an httpcore
network backend), so no test opens a socket and each can show *whether* a connection was
attempted and to which address.

Where a URL is refused matters to the reason a user reads, so each case names the layer:
"URL parsing" (httpx raises `InvalidURL`, the fetcher says "not a valid URL"), the pre-check
(scheme, host form, literal address: before any request) or the connection guard (a name's
addresses: after DNS, before connecting).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx
import pytest

from brief.egress import EgressPolicy, IPAddress, guarded_client, is_public, parse_host
from brief.errors import BlockedURL, SourceError
from brief.models import ResearchRequest
from brief.retrieval import FetchLimits, HttpFetcher

NOT_PUBLIC = "not a public address"
NOT_HTTP = "blocked: only http and https URLs can be fetched"
NOT_DOTTED = "is not an IPv4 address written as a.b.c.d"
PARSING = "not a valid URL"

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:1c48"

NAMES: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "metadata.google.internal": ["169.254.169.254"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "mixed.example": [PUBLIC_V4, PUBLIC_V6, "10.0.0.7"],
    "scoped.example": ["fe80::1%eth0"],
    "empty.example": [],
    "www.example.org": [PUBLIC_V4, PUBLIC_V6],
    "v6first.example": [PUBLIC_V6, PUBLIC_V4],
    "nat64-public.example": ["64:ff9b::5db8:d70e"],  # 93.184.215.14 through NAT64
    "pages.test": ["127.0.0.1"],
    "evil.pages.test": ["127.0.0.1"],
    "pages.test.evil.example": ["10.0.0.1"],
}


class FakeResolver:
    """Stands in for the loop's getaddrinfo; records every host it was asked about."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    async def getaddrinfo(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        name = host.lower().removesuffix(".")
        if name not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.names[name]
        ]


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    """A fake resolver installed on the test's running loop."""
    resolver = FakeResolver(NAMES)
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver.getaddrinfo)
    return resolver


def http_response(status: int = 200, body: bytes = b"<p>hello</p>", **headers: str) -> bytes:
    """The bytes of an HTTP/1.1 response that closes its connection."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class FakeStream(httpcore.AsyncNetworkStream):
    """One connection: swallows the request, replays a canned response."""

    def __init__(self, network: FakeNetwork, response: bytes) -> None:
        self._network = network
        self._unread = response

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        chunk, self._unread = self._unread[:max_bytes], self._unread[max_bytes:]
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._network.sent.append(buffer)

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._network.tls_names.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


class FakeNetwork(httpcore.AsyncNetworkBackend):
    """The network below the guard: records every connection asked of it."""

    def __init__(self, responses: dict[str, bytes] | None = None) -> None:
        self.responses = responses or {}  # by address; anything else gets a small page
        self.refuse: set[str] = set()
        self.connects: list[tuple[str, int]] = []
        self.sent: list[bytes] = []
        self.tls_names: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.refuse:
            raise httpcore.ConnectError(f"{host} refused the connection")
        return FakeStream(self, self.responses.get(host, http_response()))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
async def client(network: FakeNetwork) -> AsyncIterator[httpx.AsyncClient]:
    """A guarded client (no allowed hosts) whose network is `network`."""
    async with client_for(EgressPolicy(), network) as built:
        yield built


def client_for(policy: EgressPolicy, network: FakeNetwork) -> httpx.AsyncClient:
    return guarded_client(
        policy,
        timeout=httpx.Timeout(5.0),
        limits=httpx.Limits(max_connections=4),
        headers={"User-Agent": "test"},
        network_backend=network,
    )


async def refusal(fetcher: HttpFetcher, url: str) -> str | None:
    """Why `url` may not be fetched, or None when it may."""
    try:
        await fetcher.fetch(url)
    except SourceError as exc:
        return exc.reason
    return None


BLOCKED = [
    # loopback
    pytest.param("http://127.0.0.1/", "blocked: 127.0.0.1 is not a public address", id="loopback"),
    pytest.param("http://127.0.0.1:8080/admin", NOT_PUBLIC, id="loopback-other-port"),
    pytest.param("http://[::1]/", "blocked: ::1 is not a public address", id="ipv6-loopback"),
    pytest.param(
        "http://localhost/",
        "blocked: localhost resolves to 127.0.0.1, which is not a public address",
        id="localhost",
    ),
    pytest.param("http://LOCALHOST./", "resolves to 127.0.0.1", id="localhost-fqdn"),
    pytest.param("http://127.0.0.1./", NOT_PUBLIC, id="loopback-trailing-dot"),
    pytest.param("http://127。0。0。1/", NOT_PUBLIC, id="loopback-ideographic-dots"),
    pytest.param("http://127.0.0.1.nip.io/", "resolves to 127.0.0.1", id="wildcard-dns"),
    # private ranges
    pytest.param("http://10.0.0.1/", "blocked: 10.0.0.1 is not a public address", id="private-10"),
    pytest.param("http://172.16.0.1/", NOT_PUBLIC, id="private-172.16"),
    pytest.param("http://172.31.255.254/", NOT_PUBLIC, id="private-172.31"),
    pytest.param("http://192.168.1.1/", NOT_PUBLIC, id="private-192.168"),
    pytest.param("http://100.64.0.1/", NOT_PUBLIC, id="carrier-grade-nat"),
    pytest.param("http://198.18.0.1/", NOT_PUBLIC, id="benchmarking"),
    pytest.param("http://192.0.0.1/", NOT_PUBLIC, id="ietf-protocol-assignments"),
    pytest.param("http://192.0.2.1/", NOT_PUBLIC, id="documentation"),
    # link-local, cloud metadata, unique-local, site-local
    pytest.param(
        "http://169.254.169.254/latest/meta-data/",
        "blocked: 169.254.169.254 is not a public address",
        id="cloud-metadata",
    ),
    pytest.param(
        "http://metadata.google.internal/computeMetadata/v1/",
        "metadata.google.internal resolves to 169.254.169.254",
        id="cloud-metadata-by-name",
    ),
    pytest.param("http://[fe80::1]/", NOT_PUBLIC, id="ipv6-link-local"),
    pytest.param("http://[fe80::1%25eth0]/", NOT_PUBLIC, id="ipv6-link-local-with-zone"),
    pytest.param("http://[fd00::1]/", NOT_PUBLIC, id="ipv6-unique-local"),
    pytest.param("http://[fd00:ec2::254]/", NOT_PUBLIC, id="ipv6-cloud-metadata"),
    pytest.param("http://[fec0::1]/", NOT_PUBLIC, id="ipv6-site-local"),
    pytest.param("http://[2001:db8::1]/", NOT_PUBLIC, id="ipv6-documentation"),
    # multicast, unspecified, reserved, broadcast
    pytest.param("http://224.0.0.1/", NOT_PUBLIC, id="multicast"),
    pytest.param("http://[ff02::1]/", NOT_PUBLIC, id="ipv6-multicast-link"),
    pytest.param("http://[ff0e::1]/", NOT_PUBLIC, id="ipv6-multicast-global-scope"),
    pytest.param("http://0.0.0.0/", NOT_PUBLIC, id="unspecified"),
    pytest.param("http://[::]/", NOT_PUBLIC, id="ipv6-unspecified"),
    pytest.param("http://240.0.0.1/", NOT_PUBLIC, id="reserved"),
    pytest.param("http://255.255.255.255/", NOT_PUBLIC, id="broadcast"),
    # IPv4 wrapped in IPv6
    pytest.param("http://[::ffff:127.0.0.1]/", NOT_PUBLIC, id="ipv4-mapped-loopback"),
    pytest.param("http://[::ffff:a9fe:a9fe]/", NOT_PUBLIC, id="ipv4-mapped-metadata-hex"),
    pytest.param("http://[0:0:0:0:0:ffff:10.0.0.1]/", NOT_PUBLIC, id="ipv4-mapped-long-form"),
    pytest.param("http://[::127.0.0.1]/", NOT_PUBLIC, id="ipv4-compatible-loopback"),
    pytest.param("http://[2002:c0a8:101::1]/", NOT_PUBLIC, id="6to4-of-192.168.1.1"),
    pytest.param("http://[2002:a9fe:a9fe::1]/", NOT_PUBLIC, id="6to4-of-metadata"),
    pytest.param(
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", NOT_PUBLIC, id="teredo-private-client"
    ),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/", NOT_PUBLIC, id="nat64-of-metadata"),
    pytest.param("http://[64:ff9b::7f00:1]/", NOT_PUBLIC, id="nat64-of-loopback"),
    pytest.param("http://[64:ff9b:1::a00:1]/", NOT_PUBLIC, id="local-use-nat64"),
    pytest.param(
        "http://mapped.example/", "(10.0.0.1), which is not a public address", id="name-to-mapped"
    ),
    pytest.param(
        "http://nat64.example/",
        "resolves to 64:ff9b::a9fe:a9fe (169.254.169.254)",
        id="name-to-nat64",
    ),
    # numeric host names: the C resolver would read all of these as 127.0.0.1
    pytest.param("http://2130706433/", f"2130706433 {NOT_DOTTED}", id="decimal"),
    pytest.param("http://0x7f.0.0.1/", f"0x7f.0.0.1 {NOT_DOTTED}", id="hex-octet"),
    pytest.param("http://0x7f000001/", f"0x7f000001 {NOT_DOTTED}", id="hex-whole"),
    pytest.param("http://0x7f.1/", f"0x7f.1 {NOT_DOTTED}", id="hex-short"),
    pytest.param("http://127.1/", f"127.1 {NOT_DOTTED}", id="short-form"),
    pytest.param("http://0/", f"0 {NOT_DOTTED}", id="zero"),
    pytest.param("http://%31%32%37.0.0.1/", NOT_DOTTED, id="percent-encoded-octets"),
    pytest.param("http://1.2.3.4.5/", NOT_DOTTED, id="five-octets"),
    pytest.param("http://0177.0.0.1/", PARSING, id="octal"),  # httpx refuses these itself
    pytest.param("http://127.000.000.001/", PARSING, id="zero-padded"),
    pytest.param("http://①②⑦.0.0.1/", PARSING, id="enclosed-digits"),
    # host names DNS would not carry
    pytest.param("http://exa*mple.org/", "is not a valid host name", id="bad-host-character"),
    # schemes other than http(s)
    pytest.param("file:///etc/passwd", f"{NOT_HTTP}, not file:", id="file"),
    pytest.param("ftp://www.example.org/", f"{NOT_HTTP}, not ftp:", id="ftp"),
    pytest.param("gopher://127.0.0.1:70/_payload", f"{NOT_HTTP}, not gopher:", id="gopher"),
    # the host hidden behind userinfo
    pytest.param("http://user:secret@127.0.0.1/", NOT_PUBLIC, id="userinfo"),
    pytest.param("http://www.example.org@127.0.0.1/", NOT_PUBLIC, id="userinfo-looks-like-host"),
    # names: private answers, a mix with one private answer, and no answer at all
    pytest.param("http://internal.example/", "resolves to 10.1.2.3", id="name-to-private"),
    pytest.param("http://metadata.example/", "resolves to 169.254.169.254", id="name-to-metadata"),
    pytest.param(
        "https://mixed.example/",
        "blocked: mixed.example resolves to 10.0.0.7, which is not a public address",
        id="name-with-one-private-address",
    ),
    pytest.param("http://scoped.example/", "resolves to fe80::1", id="name-to-scoped-link-local"),
    pytest.param(
        "http://no-such-host.invalid/",
        "the host no-such-host.invalid could not be resolved",
        id="unresolvable",
    ),
    pytest.param("http://empty.example/", "the host empty.example has no address", id="no-address"),
    pytest.param("http:///path-only", "blocked: the URL has no host", id="no-host"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED)
async def test_url_is_refused_before_any_connection_with_its_reason(
    url: str, reason: str, dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    refused = await refusal(HttpFetcher(client, EgressPolicy()), url)

    assert refused is not None, f"{url} was fetched"
    assert reason in refused
    assert network.connects == []


def test_the_attack_table_is_big_enough_to_mean_something() -> None:
    assert len(BLOCKED) >= 25


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://2130706433/",
        "http://127.1/",
    ],
)
async def test_precheck_refuses_literal_and_numeric_hosts_without_asking_dns(
    url: str, dns: FakeResolver
) -> None:
    with pytest.raises(BlockedURL):
        await EgressPolicy().check(httpx.URL(url))
    assert dns.asked == []


async def test_precheck_leaves_names_to_the_connection_guard(dns: FakeResolver) -> None:
    await EgressPolicy().check(httpx.URL("http://localhost/"))  # refused when connecting
    assert dns.asked == []


@pytest.mark.parametrize(
    "url",
    [
        "http://1.1.1.1/",
        "https://93.184.215.14/page",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:1.1.1.1]/",
    ],
)
async def test_public_literal_address_is_allowed_without_asking_dns(
    url: str, dns: FakeResolver
) -> None:
    await EgressPolicy().check(httpx.URL(url))
    assert dns.asked == []


@pytest.mark.parametrize(
    "url",
    ["http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://127.1/"],
)
async def test_request_normalizes_numeric_loopback_so_it_is_refused_as_a_literal(
    url: str, dns: FakeResolver
) -> None:
    source = ResearchRequest.model_validate(
        {"question": "What is here?", "sources": [url]}
    ).sources[0]

    assert str(source) == "http://127.0.0.1/"
    with pytest.raises(BlockedURL):
        await EgressPolicy().check(httpx.URL(str(source)))
    assert dns.asked == []


# the connection guard: connect to what was checked


async def test_a_public_name_is_fetched_from_the_address_that_was_checked(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    page = await HttpFetcher(client, EgressPolicy()).fetch("https://www.example.org/article")

    assert page.body == b"<p>hello</p>"
    assert dns.asked == ["www.example.org"]
    assert network.connects == [(PUBLIC_V4, 443)]  # an address, never the name
    assert network.tls_names == ["www.example.org"]  # the certificate is checked for the name
    assert b"Host: www.example.org" in network.sent[0]


async def test_ipv4_is_tried_first_and_the_next_checked_address_after_a_refusal(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    network.refuse.add(PUBLIC_V4)

    page = await HttpFetcher(client, EgressPolicy()).fetch("http://v6first.example/")

    assert page.body == b"<p>hello</p>"
    assert network.connects == [(PUBLIC_V4, 80), (PUBLIC_V6, 80)]


async def test_nat64_of_a_public_address_is_public(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    await HttpFetcher(client, EgressPolicy()).fetch("http://nat64-public.example/")
    assert network.connects == [("64:ff9b::5db8:d70e", 80)]


async def test_dns_rebinding_never_yields_a_connection_to_loopback(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    answers = iter([[PUBLIC_V4], ["127.0.0.1"], ["127.0.0.1"], ["127.0.0.1"]])
    asked: list[str] = []

    async def rebinding(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in next(answers)]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    fetcher = HttpFetcher(client, EgressPolicy())

    first = await fetcher.fetch("http://rebind.example/")  # checked once, connected to that
    second = await refusal(fetcher, "http://rebind.example/")  # a new connection: new answer

    assert first.body == b"<p>hello</p>"
    assert second == "blocked: rebind.example resolves to 127.0.0.1, which is not a public address"
    assert network.connects == [(PUBLIC_V4, 80)]
    assert asked == ["rebind.example", "rebind.example"]  # one lookup per connection, no more


async def test_a_redirect_to_a_private_address_is_refused_before_connecting_to_it(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    network.responses[PUBLIC_V4] = http_response(
        302, b"", Location="http://169.254.169.254/latest/meta-data/"
    )

    refused = await refusal(HttpFetcher(client, EgressPolicy()), "http://www.example.org/")

    assert refused == "blocked: 169.254.169.254 is not a public address"
    assert network.connects == [(PUBLIC_V4, 80)]


async def test_a_redirect_to_a_name_of_a_private_address_is_refused_before_connecting(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    network.responses[PUBLIC_V4] = http_response(302, b"", Location="http://localhost:8080/")

    refused = await refusal(HttpFetcher(client, EgressPolicy()), "http://www.example.org/")

    assert refused is not None
    assert "localhost resolves to 127.0.0.1" in refused
    assert network.connects == [(PUBLIC_V4, 80)]


async def test_a_resolver_that_hangs_is_a_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    async def hanging(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        await asyncio.sleep(30)
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", hanging)
    fetcher = HttpFetcher(client, EgressPolicy(), FetchLimits(connect_timeout_s=0.05))

    refused = await refusal(fetcher, "http://slow-dns.example/")

    assert refused == "timed out connecting to slow-dns.example after 0.05 s"
    assert network.connects == []


async def test_a_cookie_one_page_sets_is_never_sent_with_the_next_fetch(
    dns: FakeResolver, network: FakeNetwork, client: httpx.AsyncClient
) -> None:
    network.responses[PUBLIC_V4] = http_response(Set_Cookie="session=abc; Path=/")
    fetcher = HttpFetcher(client, EgressPolicy())

    await fetcher.fetch("http://www.example.org/one")
    await fetcher.fetch("http://www.example.org/two")  # perhaps another user's job

    requests = [data for data in network.sent if data.startswith(b"GET ")]
    assert len(requests) == 2
    assert all(b"cookie" not in request.lower() for request in requests)


async def test_a_fetcher_on_an_unguarded_client_still_checks_names_before_each_request(
    dns: FakeResolver,
) -> None:
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, text="hello")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as plain:
        fetcher = HttpFetcher(plain, EgressPolicy())
        refused = await refusal(fetcher, "http://localhost/")
        page = await fetcher.fetch("http://www.example.org/")

    assert refused == "blocked: localhost resolves to 127.0.0.1, which is not a public address"
    assert page.body == b"hello"
    assert sent == ["http://www.example.org/"]


# allowed_hosts


async def test_allowed_host_skips_the_address_check_and_still_connects_to_an_address(
    dns: FakeResolver, network: FakeNetwork
) -> None:
    policy = EgressPolicy(["pages.test"])
    async with client_for(policy, network) as client:
        page = await HttpFetcher(client, policy).fetch("http://pages.test/page.html")

    assert page.body == b"<p>hello</p>"
    assert network.connects == [("127.0.0.1", 80)]


@pytest.mark.parametrize("configured", ["pages.test", "Pages.TEST", "pages.test.", "PAGES.test."])
@pytest.mark.parametrize(
    "url", ["http://pages.test/", "http://PAGES.Test./", "https://pages.test./"]
)
async def test_allowed_hosts_match_ignoring_case_and_a_trailing_dot(
    configured: str, url: str, dns: FakeResolver
) -> None:
    policy = EgressPolicy([configured])
    await policy.check(httpx.URL(url))
    assert await policy.addresses(httpx.URL(url).raw_host.decode(), 80) == [
        ipaddress.ip_address("127.0.0.1")
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://evil.pages.test/", "evil.pages.test resolves to 127.0.0.1"),
        ("http://pages.test.evil.example/", "resolves to 10.0.0.1"),
        ("http://pages.test@127.0.0.1/", "blocked: 127.0.0.1 is not a public address"),
        ("ftp://pages.test/", f"{NOT_HTTP}, not ftp:"),
    ],
    ids=["subdomain", "suffix", "userinfo", "other-scheme"],
)
async def test_allowed_host_does_not_extend_to_other_hosts_or_schemes(
    url: str, reason: str, dns: FakeResolver, network: FakeNetwork
) -> None:
    policy = EgressPolicy(["pages.test"])
    async with client_for(policy, network) as client:
        refused = await refusal(HttpFetcher(client, policy), url)

    assert refused is not None
    assert reason in refused
    assert network.connects == []


async def test_an_allowed_literal_address_is_allowed(dns: FakeResolver) -> None:
    policy = EgressPolicy(["127.0.0.1"])
    await policy.check(httpx.URL("http://127.0.0.1:8000/x"))
    assert await policy.addresses("127.0.0.1", 8000) == [ipaddress.ip_address("127.0.0.1")]


# parse_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.org", None),
        ("xn--bcher-kva.example", None),
        ("under_score.example", None),
        ("1e100.net", None),
        ("93.184.215.14", "93.184.215.14"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_parse_host_tells_names_from_literals(host: str, expected: str | None) -> None:
    parsed = parse_host(host)
    assert (None if parsed is None else str(parsed)) == expected


# is_public


def address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "text",
    [
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "::ffff:1.1.1.1",
        "2002:101:101::1",
        "64:ff9b::101:101",
    ],
    ids=["v4", "v4-other", "v6", "ipv4-mapped-public", "6to4-of-public", "nat64-of-public"],
)
def test_is_public_accepts_internet_addresses(text: str) -> None:
    assert is_public(address(text))


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "0.1.2.3",
        "240.0.0.1",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "::1",
        "::",
        "::127.0.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "fd00::1",
        "fd00:ec2::254",
        "ff02::1",
        "ff0e::1",
        "100::1",
        "2001:db8::1",
        "3fff::1",
        "2001:2::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::101:101",
    ],
)
def test_is_public_refuses_addresses_that_are_not_on_the_internet(text: str) -> None:
    assert not is_public(address(text))
