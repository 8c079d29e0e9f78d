"""The egress policy: a user's URL must never reach Brief's own network or the cloud metadata.

Every test runs on a fake resolver (the loop's `getaddrinfo` is replaced), so no test asks
real DNS. For host names that are numbers (`2130706433`, `0x7f.0.0.1`, `127.1`) the fake
does what the C resolver does: it reads them with `inet_aton`, which is parsing, not a
lookup. httpx keeps such a host as a name, so the policy sees the address the resolver
gives, as the connection later would.

Where a URL is refused matters to the reason a user reads, so each case names the layer:
"URL parsing" (httpx raises `InvalidURL` before the policy runs) or the policy's own reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx
import pytest

from brief.egress import EgressPolicy, IPAddress, is_public
from brief.errors import BlockedURL
from brief.models import ResearchRequest

NOT_PUBLIC = "which is not a public address"
NOT_HTTP = "only http and https URLs can be fetched"
PARSING = "URL parsing: Invalid IPv4 address"

NAT64_REASON = (
    "is_public unwraps IPv4-mapped, 6to4 and Teredo addresses but not NAT64 (64:ff9b::/96, "
    "RFC 6052), so an address that a NAT64 gateway translates to a private, loopback or "
    "metadata IPv4 address counts as public"
)

NAMES: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:1c48", "10.0.0.7"],
    "scoped.example": ["fe80::1%eth0"],
    "empty.example": [],
    "www.example.org": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:1c48"],
    "pages.test": ["127.0.0.1"],
    "evil.pages.test": ["127.0.0.1"],
    "pages.test.evil.example": ["10.0.0.1"],
}


class FakeResolver:
    """Stands in for the loop's getaddrinfo; records every host it was asked about."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def getaddrinfo(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        if host in self.names:
            addresses = self.names[host]
        else:
            try:  # the C resolver's numeric forms: 127.1, 2130706433, 0x7f.0.0.1
                addresses = [socket.inet_ntoa(socket.inet_aton(host))]
            except OSError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    """A fake resolver installed on the test's running loop."""
    resolver = FakeResolver(NAMES)
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver.getaddrinfo)
    return resolver


async def refusal(policy: EgressPolicy, url: str) -> str | None:
    """Why `url` may not be fetched, or None when it may."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"URL parsing: {exc}"
    try:
        await policy.check(parsed)
    except BlockedURL as exc:
        return exc.reason
    return None


BLOCKED = [
    # loopback
    pytest.param("http://127.0.0.1/", NOT_PUBLIC, id="loopback"),
    pytest.param("http://127.0.0.1:8080/admin", NOT_PUBLIC, id="loopback-other-port"),
    pytest.param("http://127.1/", "127.1 resolves to 127.0.0.1", id="loopback-short-form"),
    pytest.param("http://[::1]/", NOT_PUBLIC, id="ipv6-loopback"),
    pytest.param("http://localhost/", "localhost resolves to 127.0.0.1", id="localhost"),
    pytest.param("http://LOCALHOST./", "localhost resolves to 127.0.0.1", id="localhost-fqdn"),
    pytest.param("http://127.0.0.1./", NOT_PUBLIC, id="loopback-trailing-dot"),
    # private ranges
    pytest.param("http://10.0.0.1/", NOT_PUBLIC, id="private-10"),
    pytest.param("http://172.16.0.1/", NOT_PUBLIC, id="private-172.16"),
    pytest.param("http://172.31.255.254/", NOT_PUBLIC, id="private-172.31"),
    pytest.param("http://192.168.1.1/", NOT_PUBLIC, id="private-192.168"),
    pytest.param("http://100.64.0.1/", NOT_PUBLIC, id="carrier-grade-nat"),
    # link-local, cloud metadata, unique-local
    pytest.param(
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 resolves to 169.254.169.254, which is not a public address",
        id="cloud-metadata",
    ),
    pytest.param("http://[fe80::1]/", NOT_PUBLIC, id="ipv6-link-local"),
    pytest.param("http://[fe80::1%25eth0]/", NOT_PUBLIC, id="ipv6-link-local-with-zone"),
    pytest.param("http://[fd00::1]/", NOT_PUBLIC, id="ipv6-unique-local"),
    pytest.param("http://[fd00:ec2::254]/", NOT_PUBLIC, id="ipv6-cloud-metadata"),
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
    pytest.param("http://[::ffff:169.254.169.254]/", NOT_PUBLIC, id="ipv4-mapped-metadata"),
    pytest.param("http://[2002:c0a8:101::1]/", NOT_PUBLIC, id="6to4-of-192.168.1.1"),
    pytest.param("http://[2002:a9fe:a9fe::1]/", NOT_PUBLIC, id="6to4-of-metadata"),
    pytest.param(
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", NOT_PUBLIC, id="teredo-private-client"
    ),
    pytest.param(
        "http://[64:ff9b::a9fe:a9fe]/",
        NOT_PUBLIC,
        id="nat64-of-metadata",
        marks=pytest.mark.xfail(strict=True, reason=NAT64_REASON),
    ),
    pytest.param(
        "http://[64:ff9b::7f00:1]/",
        NOT_PUBLIC,
        id="nat64-of-loopback",
        marks=pytest.mark.xfail(strict=True, reason=NAT64_REASON),
    ),
    # numeric encodings of 127.0.0.1: httpx keeps these as names; the resolver reads them
    pytest.param("http://2130706433/", "2130706433 resolves to 127.0.0.1", id="decimal"),
    pytest.param("http://0x7f.0.0.1/", "0x7f.0.0.1 resolves to 127.0.0.1", id="hex-octet"),
    pytest.param("http://0x7f000001/", "0x7f000001 resolves to 127.0.0.1", id="hex-whole"),
    # ... except octal, which httpx refuses to parse at all
    pytest.param("http://0177.0.0.1/", PARSING, id="octal"),
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
        "mixed.example resolves to 10.0.0.7, which is not a public address",
        id="name-with-one-private-address",
    ),
    pytest.param("http://scoped.example/", "resolves to fe80::1", id="name-to-scoped-link-local"),
    pytest.param(
        "http://no-such-host.invalid/",
        "the host no-such-host.invalid could not be resolved",
        id="unresolvable",
    ),
    pytest.param("http://empty.example/", "the host empty.example has no address", id="no-address"),
    pytest.param("http:///path-only", "the URL has no host", id="no-host"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED)
async def test_url_is_refused_before_any_connection_with_its_reason(
    url: str, reason: str, dns: FakeResolver
) -> None:
    refused = await refusal(EgressPolicy(), url)

    assert refused is not None, f"{url} was allowed"
    assert reason in refused


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd00:ec2::254]/",
    ],
)
async def test_literal_address_is_refused_without_asking_dns(url: str, dns: FakeResolver) -> None:
    with pytest.raises(BlockedURL):
        await EgressPolicy().check(httpx.URL(url))
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


async def test_name_whose_every_address_is_public_is_allowed(dns: FakeResolver) -> None:
    await EgressPolicy().check(httpx.URL("https://www.example.org/article"))
    assert dns.asked == ["www.example.org"]


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


# allowed_hosts


async def test_allowed_host_skips_the_address_check(dns: FakeResolver) -> None:
    await EgressPolicy(["pages.test"]).check(httpx.URL("http://pages.test/page.html"))
    assert dns.asked == []


@pytest.mark.parametrize("configured", ["pages.test", "Pages.TEST", "pages.test.", "PAGES.test."])
@pytest.mark.parametrize(
    "url", ["http://pages.test/", "http://PAGES.Test./", "https://pages.test./"]
)
async def test_allowed_hosts_match_ignoring_case_and_a_trailing_dot(
    configured: str, url: str, dns: FakeResolver
) -> None:
    await EgressPolicy([configured]).check(httpx.URL(url))
    assert dns.asked == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://evil.pages.test/", "evil.pages.test resolves to 127.0.0.1"),
        ("http://pages.test.evil.example/", "resolves to 10.0.0.1"),
        ("http://pages.test@127.0.0.1/", "127.0.0.1 resolves to 127.0.0.1"),
        ("ftp://pages.test/", f"{NOT_HTTP}, not ftp:"),
    ],
    ids=["subdomain", "suffix", "userinfo", "other-scheme"],
)
async def test_allowed_host_does_not_extend_to_other_hosts_or_schemes(
    url: str, reason: str, dns: FakeResolver
) -> None:
    refused = await refusal(EgressPolicy(["pages.test"]), url)

    assert refused is not None
    assert reason in refused


# is_public


def address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "text",
    ["1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:1.1.1.1", "2002:101:101::1"],
    ids=["v4", "v4-other", "v6", "ipv4-mapped-public", "6to4-of-public"],
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
        "240.0.0.1",
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "fd00:ec2::254",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        pytest.param(
            "64:ff9b::a9fe:a9fe",
            marks=pytest.mark.xfail(strict=True, reason=NAT64_REASON),
        ),
        pytest.param(
            "64:ff9b::7f00:1",
            marks=pytest.mark.xfail(strict=True, reason=NAT64_REASON),
        ),
        pytest.param(
            "64:ff9b::a00:1",
            marks=pytest.mark.xfail(strict=True, reason=NAT64_REASON),
        ),
    ],
)
def test_is_public_refuses_addresses_that_are_not_on_the_internet(text: str) -> None:
    assert not is_public(address(text))
