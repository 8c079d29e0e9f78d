"""Where Brief may connect: a user's URL can point anywhere, so every hop and every connection
is checked.

Two checks, one policy:

- `EgressPolicy.check(url)` is the fast pre-check that runs before each request (every
  redirect hop included): http(s) only, a host that is a plain DNS name or a canonical IP
  literal, and a literal that is public. It asks no DNS, so a blocked literal fails before any
  connection is attempted.
- `GuardedNetworkBackend` is the check that cannot be raced. httpcore asks it for every new TCP
  connection; it resolves the host once, refuses unless *every* address is public, and then
  connects to one of the addresses it checked, never to the name. A DNS answer that changes
  between a check and a connect (DNS rebinding) has no window to land in. TLS still verifies
  the certificate against the host name: httpcore passes it as `server_hostname` when it
  starts TLS on the stream this backend returns.

Hosts in `allowed_hosts` skip the public-address check (a deployment's own services, loopback
test fixtures); nothing else about them is relaxed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Final

import httpcore
import httpx

from brief.errors import BlockedURL, SourceError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Answers `(host, port)` with the host's addresses; raises SourceError when it cannot."""

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Not reachable on, or not meant for, the public internet. Python's `is_global` covers most of
# these, but its tables change between releases (3.11 and 3.12 differ), so the list is explicit.
_NOT_PUBLIC_V4: Final = tuple(
    _V4(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, including 169.254.169.254 (cloud metadata)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, NAT64 discovery)
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including 255.255.255.255 (broadcast)
    )
)
# IPv6 is checked the other way round: only global unicast (2000::/3) can be public; that alone
# excludes ::/8 (unspecified, loopback, IPv4-compatible), fc00::/7 (unique-local), fe80::/10
# (link-local), fec0::/10 (site-local) and ff00::/8 (multicast). Inside 2000::/3:
_GLOBAL_UNICAST: Final = _V6("2000::/3")
_NOT_PUBLIC_V6: Final = tuple(
    _V6(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo is unwrapped before this)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_NAT64: Final = _V6("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are IPv4

# A last label that is a number makes a host an IPv4 address to URL parsers and to the C
# resolver (`inet_aton` reads 2130706433, 0x7f.1 and 0177.0.0.1 as 127.0.0.1). Brief accepts
# only the canonical dotted quad and refuses every other numeric form outright.
_NUMERIC_LABEL: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_NAME_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet, seen through IPv4-in-IPv6 wrappers
    (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 and Teredo carry the IPv4 address they reach)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        return (
            address in _GLOBAL_UNICAST
            and not any(address in net for net in _NOT_PUBLIC_V6)
            and address.is_global
        )
    return not any(address in net for net in _NOT_PUBLIC_V4) and address.is_global


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the IPv4 wrappers."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client, where a Teredo relay delivers the packets
    return None


def describe(address: IPAddress) -> str:
    """The address as a user can read it: an IPv4 wrapper shows what it wraps."""
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return f"{address} ({inner})" if inner is not None else str(address)


def parse_host(host: str) -> IPAddress | None:
    """The address `host` names literally, or None when it is a DNS name.

    Raises BlockedURL for a host that is neither: an IPv4 address in any form but `a.b.c.d`
    (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`), or a name with characters DNS does not use.
    `host` is as httpx and httpcore carry it: IDNA-encoded, IPv6 without brackets.
    """
    bare = host.lower().removesuffix(".")
    if not bare:
        raise BlockedURL("blocked: the URL has no host")
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            raise BlockedURL(f"blocked: {host} is not a valid IPv6 address") from None
    labels = bare.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            return ipaddress.IPv4Address(bare)  # exactly a.b.c.d, decimal, no leading zeros
        except ValueError:
            raise BlockedURL(f"blocked: {host} is not an IPv4 address written as a.b.c.d") from None
    if len(bare) > 253 or not all(_NAME_LABEL.fullmatch(label) for label in labels):
        raise BlockedURL(f"blocked: {host} is not a valid host name")
    return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (the loop's `getaddrinfo`)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceError(f"the host {host} could not be resolved") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class EgressPolicy:
    """Decides whether a URL may be fetched and which addresses a connection may use."""

    def __init__(
        self, allowed_hosts: Iterable[str] = (), *, resolver: Resolver = system_resolver
    ) -> None:
        self._allowed = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self._resolve = resolver

    def allows(self, host: str) -> bool:
        """True when `host` is configured to skip the public-address check."""
        return host.lower().rstrip(".") in self._allowed

    async def check(self, url: httpx.URL) -> None:
        """Raise BlockedURL unless `url` is http(s), its host is well formed, and a literal
        address in it is public. Asks no DNS: names are checked when connecting."""
        if url.scheme not in {"http", "https"}:
            raise BlockedURL(
                f"blocked: only http and https URLs can be fetched, not {url.scheme or '?'}:"
            )
        host = url.raw_host.decode("ascii")
        address = parse_host(host)
        if address is not None and not self.allows(host) and not is_public(address):
            raise BlockedURL(f"blocked: {describe(address)} is not a public address")

    async def check_now(self, url: httpx.URL) -> None:
        """`check`, then the addresses the host resolves to at this moment.

        Racy (the connection resolves again): only for clients without the guard, so a
        fetcher given one is still no worse than a check before connecting.
        """
        await self.check(url)
        host = url.raw_host.decode("ascii")
        if not self.allows(host):
            await self.addresses(host, url.port or (443 if url.scheme == "https" else 80))

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses a connection to `host` may use: all of them checked, IPv4 first.

        Raises BlockedURL when any address is not public (one bad answer taints the name: a
        client that picked among them could be steered to it), SourceError when the host
        has no address.
        """
        literal = parse_host(host)
        allowed = self.allows(host)
        if literal is not None:
            if not allowed and not is_public(literal):
                raise BlockedURL(f"blocked: {describe(literal)} is not a public address")
            return [literal]
        found = list(dict.fromkeys(await self._resolve(host, port)))
        if not found:
            raise SourceError(f"the host {host} has no address")
        if not allowed:
            for address in found:
                if not is_public(address):
                    log.warning("egress blocked", extra={"host": host, "address": str(address)})
                    raise BlockedURL(
                        f"blocked: {host} resolves to {describe(address)}, "
                        "which is not a public address"
                    )
        # Lambda's network is IPv4 unless it runs in a dual-stack VPC: trying an unroutable
        # IPv6 answer first could cost the whole connect timeout.
        return sorted(found, key=lambda a: a.version)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy checked.

    Wraps another backend (`httpcore.AnyIOBackend`, httpcore's own default on asyncio) and
    hands it an IP literal, never a name, so the inner backend does no DNS of its own.
    """

    def __init__(
        self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve `host` once, check every address, connect to the first that answers."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._policy.addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took more than {timeout:g} s") from exc
        failure: Exception | None = None
        for address in addresses:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=left,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        if failure is not None:
            raise failure
        raise httpcore.ConnectTimeout(f"connecting to {host} took more than {timeout:g} s")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a URL cannot name a local socket."""
        raise BlockedURL("blocked: connections to local sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """The inner backend's sleep (httpcore uses it between connection retries)."""
        await self._inner.sleep(seconds)


# httpcore's exceptions as httpx's, most specific first, as httpx's own transport maps them.
_CORE_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
_CORE_BASES: Final = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except _CORE_BASES as exc:
        for core, mapped in _CORE_ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise  # pragma: no cover - every base is in the table


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _as_httpx_errors():
                await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore connection pool with a `GuardedNetworkBackend`.

    Why a transport of our own rather than `httpx.AsyncHTTPTransport`: that class builds its
    httpcore pool inside `__init__` and offers no way to pass a network backend; swapping its
    private `_pool` afterwards works on httpx 0.28 but would break silently on any release that
    renames it, taking the SSRF guard with it. This class uses only public API of both
    libraries (`httpcore.AsyncConnectionPool(network_backend=...)`, the request, response and
    exception types), and it supports exactly what fetching needs: HTTP/1.1 over TCP and TLS
    with pool limits. Proxies and unix sockets are deliberately absent: either would route
    around the address check.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        limits = limits or httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedNetworkBackend(policy, network_backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the guarded pool."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()


class GuardedClient(httpx.AsyncClient):
    """An httpx client on a `GuardedTransport`; made by `guarded_client`."""


def guarded_client(
    policy: EgressPolicy,
    *,
    timeout: httpx.Timeout,
    limits: httpx.Limits,
    headers: dict[str, str],
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> GuardedClient:
    """The HTTP client for fetching users' URLs: every connection passes `policy`.

    Build it once per container (the SSL context costs ~18 ms). `network_backend` replaces the
    real network below the guard, for tests.
    """
    transport = GuardedTransport(policy, limits=limits, network_backend=network_backend)
    return GuardedClient(
        transport=transport,
        timeout=timeout,
        headers=headers,
        # Stateless: a cookie one page sets is never sent with a later fetch, which may be
        # another user's job.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        follow_redirects=False,  # HttpFetcher follows them by hand, checking every hop
        trust_env=False,  # a proxy from the environment would bypass the address check
    )
