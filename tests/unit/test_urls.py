"""URL normalization: the spellings of one page collapse to one key; different pages do not."""

from __future__ import annotations

import pytest

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
