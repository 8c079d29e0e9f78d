"""Where Brief may connect: a user's URL can point anywhere, so every hop is checked.

A URL is allowed only if it is http(s) and every address its host resolves to is public
(not loopback, private, link-local such as cloud metadata, unique-local, multicast or
reserved). Hosts named in `allowed_hosts` skip the address check, for a deployment's own
internal services and for loopback test fixtures.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpx

from brief.errors import BlockedURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet, seen through IPv4-in-IPv6 wrappers."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo:
            inner = address.teredo[1]
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


class EgressPolicy:
    """Decides, before any connection, whether a URL may be fetched."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self._allowed = frozenset(h.lower().rstrip(".") for h in allowed_hosts)

    async def check(self, url: httpx.URL) -> None:
        """Raise BlockedURL unless `url` is http(s) and its host resolves only to public IPs."""
        if url.scheme not in {"http", "https"}:
            raise BlockedURL(f"only http and https URLs can be fetched, not {url.scheme or '?'}:")
        host = url.host.lower().rstrip(".")
        if not host:
            raise BlockedURL("the URL has no host")
        if host in self._allowed:
            return
        for address in await self._resolve(
            host, url.port or (443 if url.scheme == "https" else 80)
        ):
            if not is_public(address):
                raise BlockedURL(f"{host} resolves to {address}, which is not a public address")

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise BlockedURL(f"the host {host} could not be resolved") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise BlockedURL(f"the host {host} has no address")
        return addresses
