"""URL normalization: one spelling per page, for de-duplication and cache keys.

Two URLs that normalize to the same string fetch the same page from the same server in every
way that matters to a reader. The rules, in order: lowercase scheme and host, host in IDNA
(punycode) without a trailing dot, no default port, no dot segments (`/a/./b/../c` is `/a/c`;
a final `..` drops the slash too, `/a/b/..` is `/a`, because that is what httpx requests),
an empty path as `/`, percent-escapes in upper case with unreserved characters decoded
(`%7e` is `~`), query parameters sorted by name (repeated names keep their order) without
tracking parameters (`utm_*`, `fbclid`, `gclid`, ...), and no fragment. Path case is kept:
servers may treat `/Page` and `/page` as different pages.

Parsing follows httpx's (`httpx._urlparse`, RFC 3986 with WHATWG's percent-encode sets) step
for step, so a URL's key is the URL httpx requests, without importing httpx: the functions
that only compare URLs (summarize, combine, the API) must not pay ~30 ms of cold start for it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final, NamedTuple
from urllib.parse import unquote_plus

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
_UNRESERVED_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_UNRESERVED: Final = frozenset(_UNRESERVED_CHARS.encode())

# httpx's parser (`httpx/_urlparse.py`), ported: its limits, patterns and percent-encode sets.
_MAX_URL_CHARS: Final = 65_536
_URL: Final = re.compile(
    r"(?:(?P<scheme>([a-zA-Z][a-zA-Z0-9+.-]*)?):)?"
    r"(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?:#(?P<fragment>.*))?"
)
_AUTHORITY: Final = re.compile(r"(?:(?P<userinfo>.*)@)?(?P<host>(\[.*\]|[^:@]*)):?(?P<port>.*)?")
_IPV4_STYLE: Final = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_IPV6_STYLE: Final = re.compile(r"^\[.*\]$")
_PERCENT_ENCODED: Final = re.compile("%[A-Fa-f0-9]{2}")
# Ports WHATWG names as defaults; httpx looks the scheme up as written, before lowercasing.
_WHATWG_PORTS: Final = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}


def _printable_except(*excluded: int) -> str:
    return "".join(chr(i) for i in range(0x20, 0x7F) if i not in excluded)


# WHATWG's percent-encode sets, as the characters left alone (besides the unreserved).
_QUERY_SAFE: Final = _printable_except(0x20, 0x22, 0x23, 0x3C, 0x3E)
_PATH_SAFE: Final = _printable_except(0x20, 0x22, 0x23, 0x3C, 0x3E, 0x3F, 0x60, 0x7B, 0x7D)
_USERINFO_SAFE: Final = _printable_except(
    *(0x20, 0x22, 0x23, 0x3C, 0x3E, 0x3F, 0x60, 0x7B, 0x7D),
    *(0x2F, 0x3B, 0x3D, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x7C),
)
_FRAGMENT_SAFE: Final = _printable_except(0x20, 0x22, 0x3C, 0x3E, 0x60)
_HOST_SAFE: Final = "!$&'()*+,;=" + '"`{}%|\\'  # sub-delims, and what WHATWG lets through


class _Parts(NamedTuple):
    """A parsed URL as httpx holds it: every part ASCII, percent-encoded."""

    scheme: str
    userinfo: str
    host: str
    port: int | None
    path: str
    query: str | None


def normalize_url(url: str) -> str:
    """The canonical spelling of `url`; raises ValueError when it is not a URL with a host."""
    try:
        parsed = _parse(url.strip())  # parses, lowercases, IDNA-encodes, drops dot segments
    except _InvalidURL as exc:
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from exc
    host = parsed.host.lower().removesuffix(".")
    if not parsed.scheme or not host:
        raise ValueError(f"not a URL with a scheme and a host: {url!r}")
    if not _HOST.fullmatch(host):
        raise ValueError(f"not a URL with a valid host: {url!r}")
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parsed.userinfo}@{host}" if parsed.userinfo else host
    scheme = parsed.scheme
    if parsed.port is not None and _DEFAULT_PORTS.get(scheme) != parsed.port:
        netloc += f":{parsed.port}"
    path = _remove_dot_segments(_escapes(parsed.path or "/"))
    query = _query(parsed.query or "")
    return f"{scheme}://{netloc}{path or '/'}{'?' + query if query else ''}"


def same_page(uri: str) -> str:
    """What makes two source strings the same page: the normalized URL (case, default ports,
    fragments, tracking parameters); an s3:// URI, or anything else, as written."""
    if uri.startswith("s3://"):
        return uri
    try:
        return normalize_url(uri)
    except ValueError:
        return uri


def unusable(url: str) -> str | None:
    """What in `url` keeps httpx from ever requesting it, in words a user can act on; None
    when nothing does.

    `url` may be relative (a redirect's `Location`); only its own parts count. The cases: a
    host that cannot be IDNA-encoded, an `xn--` host httpx cannot decode back (see
    `host_problem`), a port outside 1-65535, or any other part httpx refuses (its message).
    Whether the scheme and host may be fetched is the egress policy's question, not this one's.
    """
    try:
        parsed = _parse(url)
    except _UnencodableHost as exc:
        return f"the host name {shown(exc.host)} cannot be encoded ({exc.why})"
    except _InvalidURL as exc:
        return str(exc)
    return host_problem(parsed.host) or port_problem(parsed.port)


def host_problem(host: str) -> str | None:
    """Why httpx cannot carry `host` (ASCII, as httpx holds it), or None.

    httpx decodes every host that starts with `xn--` back to Unicode under IDNA 2008, which
    refuses labels that browsers' UTS 46 accepts and encodes (`☃.net` is `xn--n3h.net`), and
    labels that are not punycode at all; such a host fails every request httpx builds.
    """
    if not host.startswith("xn--"):
        return None
    import idna  # deferred, as in `_encode_host`

    try:
        idna.decode(host)
    except UnicodeError as exc:  # idna.IDNAError is one
        return f"the host name {shown(host)} cannot be decoded ({exc})"
    return None


def port_problem(port: int | None) -> str | None:
    """Why no connection can use `port` (ports are 1-65535), or None (no port: the default)."""
    if port is None or 0 < port < 65_536:
        return None
    return f"port {shown(str(port))} is out of range"


def shown(text: str, limit: int = 100) -> str:
    """`text` as a reason quotes it: cut to `limit` characters (a host may be 64 KiB)."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


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
    """RFC 3986 5.2.4 (the parser already did this; kept so the rule does not depend on it)."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    ends_in_dir = path.endswith(("/.", "/..")) or path in {".", ".."}
    return "/" + "/".join(output) + ("/" if ends_in_dir and output else "")


class _InvalidURL(ValueError):
    """What httpx raises as `httpx.InvalidURL`, with the same messages."""


class _UnencodableHost(_InvalidURL):
    """A host IDNA cannot encode; `why` is what IDNA says of it."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"Invalid IDNA hostname: {host!r}")
        self.host = host
        self.why = why


def _parse(url: str) -> _Parts:
    """`httpx.URL(url)`'s parts: validated, lowercased, IDNA-encoded, without dot segments."""
    if len(url) > _MAX_URL_CHARS:
        raise _InvalidURL("URL too long")
    for position, char in enumerate(url):
        if char.isascii() and not char.isprintable():
            raise _InvalidURL(
                f"Invalid non-printable ASCII character in URL, {char!r} at position {position}."
            )
    match = _URL.match(url)
    assert match is not None  # every part is optional: it always matches
    raw_scheme = match["scheme"] or ""
    path = match["path"] or ""
    query, fragment = match["query"], match["fragment"]
    authority = _AUTHORITY.match(match["authority"] or "")
    assert authority is not None
    scheme = raw_scheme.lower()
    userinfo = _quote(authority["userinfo"] or "", _USERINFO_SAFE)
    host = _encode_host(authority["host"] or "")
    port = _port(authority["port"], raw_scheme)
    has_authority = bool(userinfo or host or port is not None)
    if not scheme and not has_authority:
        if path.startswith("//"):
            raise _InvalidURL("Relative URLs cannot have a path starting with '//'")
        if path.startswith(":"):
            raise _InvalidURL("Relative URLs cannot have a path starting with ':'")
    if scheme or has_authority:
        path = _drop_dot_segments(path)
    if fragment is not None:
        _quote(fragment, _FRAGMENT_SAFE)  # dropped, but refused as httpx refuses it
    return _Parts(
        scheme,
        userinfo,
        host,
        port,
        _quote(path, _PATH_SAFE),
        None if query is None else _quote(query, _QUERY_SAFE),
    )


def _encode_host(host: str) -> str:
    if not host:
        return ""
    if _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ipaddress.AddressValueError:
            raise _InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if _IPV6_STYLE.match(host):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ipaddress.AddressValueError:
            raise _InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    if host.isascii():
        return _quote(host.lower(), _HOST_SAFE)
    import idna  # deferred: only a non-ASCII name needs it (and only httpx's users import it)

    try:  # IDNA 2008, as httpx encodes a name (the stdlib's codec is IDNA 2003: ß is ss)
        return idna.encode(host.lower()).decode("ascii")
    except idna.IDNAError as exc:
        raise _UnencodableHost(host, str(exc)) from None


def _port(port: str | None, scheme: str) -> int | None:
    if not port:
        return None
    try:
        number = int(port)  # as httpx: int() also takes " 80", "+80" and "8_0"
    except ValueError:
        raise _InvalidURL(f"Invalid port: {port!r}") from None
    return None if number == _WHATWG_PORTS.get(scheme) else number


def _drop_dot_segments(path: str) -> str:
    """httpx's dot-segment removal, which drops the slash before a final `..`."""
    if "." not in path:
        return path
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if output and output != [""]:
                output.pop()
        elif segment != ".":
            output.append(segment)
    return "/".join(output)


def _quote(text: str, safe: str) -> str:
    """Percent-encode what is neither unreserved nor `safe`, keeping `%xx` escapes as they are."""
    parts: list[str] = []
    position = 0
    for match in _PERCENT_ENCODED.finditer(text):
        if match.start() != position:
            parts.append(_percent_encoded(text[position : match.start()], safe))
        parts.append(match.group(0))
        position = match.end()
    if position != len(text):
        parts.append(_percent_encoded(text[position:], safe))
    return "".join(parts)


def _percent_encoded(text: str, safe: str) -> str:
    kept = _UNRESERVED_CHARS + safe
    if not text.rstrip(kept):
        return text
    return "".join(c if c in kept else "".join(f"%{b:02X}" for b in c.encode()) for c in text)
