"""URL normalization: the spellings of one page collapse to one key; different pages do not."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brief import urls
from brief.urls import dedupe, is_tracking_param, normalize_url


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        pytest.param("HTTP://Example.ORG/Page", "http://example.org/Page", id="case"),
        pytest.param("http://example.org:80/", "http://example.org/", id="http-default-port"),
        pytest.param("HTTP://example.org:80/", "http://example.org/", id="port-with-upper-scheme"),
        pytest.param("https://example.org:443/a", "https://example.org/a", id="https-default-port"),
        pytest.param("http://example.org:8080/", "http://example.org:8080/", id="other-port"),
        pytest.param("https://example.org:80/", "https://example.org:80/", id="crossed-port"),
        pytest.param("http://example.org", "http://example.org/", id="empty-path"),
        pytest.param("http://example.org/a#section-2", "http://example.org/a", id="fragment"),
        pytest.param("http://example.org/a/./b/../c", "http://example.org/a/c", id="dot-segments"),
        # httpx requests /a for /a/b/.. (RFC 3986 says /a/); the key follows what is fetched
        pytest.param("http://example.org/a/b/..", "http://example.org/a", id="trailing-dot-dot"),
        pytest.param("http://example.org/../../a", "http://example.org/a", id="above-root"),
        pytest.param("http://example.org/%2E%2E/a", "http://example.org/a", id="encoded-dots"),
        pytest.param("http://example.org/%7euser", "http://example.org/~user", id="unreserved"),
        pytest.param("http://example.org/a%2fb", "http://example.org/a%2Fb", id="escape-case"),
        pytest.param("http://example.org/dir/", "http://example.org/dir/", id="trailing-slash"),
        pytest.param("http://example.org./a", "http://example.org/a", id="trailing-dot-host"),
        pytest.param("http://Bücher.example/", "http://xn--bcher-kva.example/", id="idna"),
        pytest.param("http://[::1]:80/", "http://[::1]/", id="ipv6"),
        pytest.param("  http://example.org/  ", "http://example.org/", id="whitespace"),
        pytest.param("http://example.org/?b=2&a=1", "http://example.org/?a=1&b=2", id="sorted"),
        pytest.param(
            "http://example.org/?tag=b&x=1&tag=a",
            "http://example.org/?tag=b&tag=a&x=1",
            id="repeated-names-keep-order",
        ),
        pytest.param(
            "http://example.org/a?utm_source=news&id=7&UTM_Medium=x&fbclid=abc&gclid=1",
            "http://example.org/a?id=7",
            id="tracking",
        ),
        pytest.param("http://example.org/?utm_source=x", "http://example.org/", id="only-tracking"),
        pytest.param("http://example.org/?", "http://example.org/", id="empty-query"),
        pytest.param(
            "http://example.org/?a=1&&b=2", "http://example.org/?a=1&b=2", id="empty-pair"
        ),
        pytest.param("http://example.org/?q=%7e", "http://example.org/?q=~", id="query-escapes"),
        pytest.param("http://u:p@example.org/", "http://u:p@example.org/", id="userinfo-kept"),
    ],
)
def test_normalize_url(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


def test_normalizing_twice_changes_nothing() -> None:
    url = "HTTP://Bücher.Example:80/a/./b/../%7ec?z=1&utm_id=2&a=%2f#top"
    once = normalize_url(url)
    assert normalize_url(once) == once


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://example.org/Page", "http://example.org/page"),  # servers may tell case apart
        ("http://example.org/a", "https://example.org/a"),
        ("http://example.org/a", "http://example.org/a/"),
        ("http://example.org/?id=1", "http://example.org/?id=2"),
        ("http://example.org/?a=1&a=2", "http://example.org/?a=2&a=1"),
        ("http://example.org/a%2Fb", "http://example.org/a/b"),
    ],
)
def test_different_pages_stay_different(a: str, b: str) -> None:
    assert normalize_url(a) != normalize_url(b)


@pytest.mark.parametrize("url", ["", "not a url", "http://", "/relative/path", "http://exa mple/"])
def test_a_string_that_is_not_a_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        normalize_url(url)


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("UTM_CAMPAIGN", True),
        ("fbclid", True),
        ("gclid", True),
        ("msclkid", True),
        ("id", False),
        ("utm", False),
        ("page", False),
    ],
)
def test_tracking_params(name: str, tracking: bool) -> None:
    assert is_tracking_param(name) is tracking


def test_dedupe_keeps_the_first_spelling_of_each_page_in_order() -> None:
    urls = [
        "https://example.org/a?utm_source=x",
        "http://example.org/b",
        "HTTPS://EXAMPLE.ORG:443/a#intro",
        "http://example.org/b/",
        "https://example.org/a",
        "not a url",
        "not a url",
    ]
    assert dedupe(urls) == [
        "https://example.org/a?utm_source=x",
        "http://example.org/b",
        "http://example.org/b/",
        "not a url",
    ]


def test_dedupe_of_nothing_is_nothing() -> None:
    assert dedupe([]) == []


# Edges of the parser, which follows httpx's step for step (the key is the URL httpx requests).
@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        pytest.param("http://ß.example/", "http://xn--zca.example/", id="idna-2008-keeps-sharp-s"),
        pytest.param("http://[::FFFF:1.2.3.4]/", "http://[::ffff:1.2.3.4]/", id="ipv6-case"),
        pytest.param("http://[fe80::1%25eth0]/", "http://[fe80::1%25eth0]/", id="ipv6-zone"),
        pytest.param("http://example.org:080/", "http://example.org/", id="port-leading-zero"),
        pytest.param("http://example.org/a b?c d", "http://example.org/a%20b?c%20d", id="spaces"),
        pytest.param("http://example.org/é", "http://example.org/%C3%A9", id="non-ascii-path"),
        pytest.param("http://u@v:p@example.org/", "http://u%40v:p@example.org/", id="at-in-user"),
        pytest.param("http://example.org/?%75tm_id=1&a=2", "http://example.org/?a=2", id="utm-esc"),
        pytest.param("http://example.org/a/..%2f", "http://example.org/a/..%2F", id="esc-slash"),
    ],
)
def test_normalize_url_edges(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://01.2.3.4/", "Invalid IPv4 address"),
        ("http://example.org:http/", "Invalid port"),
        ("http://exa\tmple.org/", "non-printable"),
        ("http://example.org" + "/a" * 40_000, "URL too long"),
        ("http://a!b.example/", "not a URL with a valid host"),
        ("http://㎉.example/", "Invalid IDNA hostname"),
        ("http:relative", "not a URL with a scheme and a host"),
    ],
)
def test_a_malformed_url_is_a_value_error_that_says_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_url(url)


def _over_httpx(url: str) -> str:
    """normalize_url as it was written over `httpx.URL`: the oracle for its own parser."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from exc
    host = parsed.raw_host.decode("ascii").lower().removesuffix(".")
    if not parsed.scheme or not host:
        raise ValueError(f"not a URL with a scheme and a host: {url!r}")
    if not urls._HOST.fullmatch(host):
        raise ValueError(f"not a URL with a valid host: {url!r}")
    host = f"[{host}]" if ":" in host else host
    userinfo = parsed.userinfo.decode("ascii")
    netloc = f"{userinfo}@{host}" if userinfo else host
    scheme = parsed.scheme.lower()
    if parsed.port is not None and {"http": 80, "https": 443}.get(scheme) != parsed.port:
        netloc += f":{parsed.port}"
    raw_path = parsed.raw_path.split(b"?", 1)[0].decode("ascii")
    path = urls._remove_dot_segments(urls._escapes(raw_path))
    query = urls._query(parsed.query.decode("ascii"))
    return f"{scheme}://{netloc}{path or '/'}{'?' + query if query else ''}"


def _outcome(normalize: Callable[[str], str], url: str) -> str:
    try:
        return normalize(url)
    except ValueError as exc:
        return f"{type(exc).__name__}: {exc}"


_PIECE = st.sampled_from(
    [
        *"aZ09-._~:/?#[]@!$&'()*+,;=% \"<>`{}|\\^\t",
        *("é", "中", "%2e", "%2E%2E", "%7E", "%2f", "%zz", ".", "..", "/..", "/.", "utm_x=1", "&"),
    ]
)
_PIECES = st.lists(_PIECE, max_size=8).map("".join)


@settings(max_examples=1_000, deadline=None)
@given(
    st.sampled_from(["http://", "HTTPS://", "ws://", "WS://", "mailto:", "//", " ", ""]),
    st.sampled_from(["example.org", "Ex.ORG.", "u:p@h", "[::1]", "[::1", "ß.de", "01.2.3.4", ""]),
    st.sampled_from(["", ":", ":80", ":443", ":8080", ":+80", ":x"]),
    st.lists(_PIECES, max_size=4).map("/".join),
    st.none() | _PIECES,
    st.none() | _PIECES,
)
def test_every_url_normalizes_as_it_did_over_httpx(
    scheme: str, host: str, port: str, path: str, query: str | None, fragment: str | None
) -> None:
    """The key is of the URL httpx requests, and a URL httpx refuses is refused alike."""
    url = scheme + host + port + ("/" if path else "") + path
    url += ("" if query is None else "?" + query) + ("" if fragment is None else "#" + fragment)
    assert _outcome(normalize_url, url) == _outcome(_over_httpx, url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.org:8080/a?b#c", None),
        ("http://中国.example/", None),
        ("http://xn--fiqs8s.example/", None),
        ("/a/relative/path?q", None),
        (
            "http://☃.net/",
            "the host name ☃.net cannot be encoded (Codepoint U+2603 at position 1 of '☃' "
            "not allowed)",
        ),
        (
            "//xn--n3h.net/",
            "the host name xn--n3h.net cannot be decoded (Codepoint U+2603 at position 1 of "
            "'☃' not allowed)",
        ),
        (
            "http://xn--zz.example/",
            "the host name xn--zz.example cannot be decoded (Invalid A-label)",
        ),
        ("http://example.org:70000/", "port 70000 is out of range"),
        ("http://example.org:-1/", "port -1 is out of range"),
        ("http://example.org:0/", "port 0 is out of range"),
        ("http://example.org:x/", "Invalid port: 'x'"),
        ("http://xn--" + "a" * 300 + ".example/", "the host name xn--aaaaaaaaa"),
    ],
)
def test_unusable_names_what_no_request_could_carry(url: str, problem: str | None) -> None:
    found = urls.unusable(url)
    if problem is None or found is None:
        assert found == problem
    else:
        assert found.startswith(problem)
        assert len(found) < 200  # a 300-character host is cut short in the reason


_HOSTS = st.sampled_from(
    [
        *["example.org", "☃.net", "xn--n3h.net", "www.xn--n3h.net", "xn--zz.example", "xn--"],
        *["ß.de", "xn--zca.de", "XN--N3H.NET", "xn--fiqs8s.a_b.example", "[::1]", "01.2.3.4"],
        *["", "a b"],
    ]
)
_PORTS = st.sampled_from(["", ":", ":80", ":0", ":-1", ":65535", ":65536", ":70000", ":x"])


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(["http://", "https://", "//", ""]), _HOSTS, _PORTS, _PIECES)
def test_a_url_is_unusable_exactly_when_httpx_cannot_request_it(
    scheme: str, host: str, port: str, path: str
) -> None:
    """httpx is the oracle: it builds the request (and its Host header) or fails, and the
    socket takes its port or refuses it."""
    url = f"{scheme}{host}{port}/{path}"
    try:
        request = httpx.Request("GET", url)
        usable = request.url.port is None or 0 < request.url.port < 65_536
    except (httpx.InvalidURL, UnicodeError):
        usable = False
    assert (urls.unusable(url) is None) == usable, urls.unusable(url)
