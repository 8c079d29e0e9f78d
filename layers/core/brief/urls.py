"""URL normalization: one spelling per page, for de-duplication and cache keys.

Two URLs that normalize to the same string fetch the same page from the same server in every
way that matters to a reader. The rules, in order: lowercase scheme and host, host in IDNA
(punycode) without a trailing dot, no default port, no dot segments (`/a/./b/../c` is `/a/c`;
a final `..` drops the slash too, `/a/b/..` is `/a`, because that is what httpx requests),
an empty path as `/`, percent-escapes in upper case with unreserved characters decoded
(`%7e` is `~`), query parameters sorted by name (repeated names keep their order) without
tracking parameters (`utm_*`, `fbclid`, `gclid`, ...), and no fragment. Path case is kept:
servers may treat `/Page` and `/page` as different pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote_plus

import httpx

TRACKING_PARAMS: Final = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
    }
)
"""Query parameters that say how a reader arrived, not what they read (besides `utm_*`)."""

_HOST: Final = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+(?:%25[a-z0-9._~-]+)?")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_ESCAPE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def normalize_url(url: str) -> str:
    """The canonical spelling of `url`; raises ValueError when it is not a URL with a host."""
    try:
        parsed = httpx.URL(url.strip())  # parses, lowercases, IDNA-encodes, drops dot segments
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from exc
    host = parsed.raw_host.decode("ascii").lower().removesuffix(".")
    if not parsed.scheme or not host:
        raise ValueError(f"not a URL with a scheme and a host: {url!r}")
    if not _HOST.fullmatch(host):
        raise ValueError(f"not a URL with a valid host: {url!r}")
    if ":" in host:
        host = f"[{host}]"
    userinfo = parsed.userinfo.decode("ascii")
    netloc = f"{userinfo}@{host}" if userinfo else host
    scheme = parsed.scheme.lower()
    if parsed.port is not None and _DEFAULT_PORTS.get(scheme) != parsed.port:
        netloc += f":{parsed.port}"
    path = _remove_dot_segments(_escapes(parsed.raw_path.split(b"?", 1)[0].decode("ascii")))
    query = _query(parsed.query.decode("ascii"))
    return f"{scheme}://{netloc}{path or '/'}{'?' + query if query else ''}"


def dedupe(urls: Iterable[str]) -> list[str]:
    """`urls` without repeats, by normalized form, each kept as first written, in order.

    A string that is not a URL is compared as written (retrieval will give its reason).
    """
    seen: set[str] = set()
    kept: list[str] = []
    for url in urls:
        try:
            key = normalize_url(url)
        except ValueError:
            key = url
        if key not in seen:
            seen.add(key)
            kept.append(url)
    return kept


def is_tracking_param(name: str) -> bool:
    """True for a query parameter that only tracks the reader (`utm_source`, `fbclid`, ...)."""
    name = unquote_plus(name).lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


def _query(query: str) -> str:
    pairs = [p for p in query.split("&") if p and not is_tracking_param(p.split("=", 1)[0])]
    pairs.sort(key=lambda p: _escapes(p.split("=", 1)[0]))  # stable: repeated names keep order
    return "&".join(_escapes(p) for p in pairs)


def _escapes(text: str) -> str:
    """Upper-case percent-escapes; decode those of unreserved characters (RFC 3986 6.2.2)."""

    def one(match: re.Match[str]) -> str:
        byte = int(match.group(1), 16)
        return chr(byte) if byte in _UNRESERVED else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(one, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 (httpx already does this; kept so the rule does not depend on it)."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    ends_in_dir = path.endswith(("/.", "/..")) or path in {".", ".."}
    return "/" + "/".join(output) + ("/" if ends_in_dir and output else "")
