"""An HTML page's main text: boilerplate removed so that it is neither summarized nor cited.

Navigation, banners, cookie notices, sidebars, forms and scripts go; `<main>` or `<article>`
is preferred when it holds most of the text; the title comes from og:title, `<title>` or
the first `<h1>`, and the canonical link is kept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from brief.errors import UnsupportedContent
from brief.extraction.text import NO_TEXT, ExtractedText, clip_title, join, normalize

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

# Removed before anything else: never prose, or never the page's own content.
_JUNK_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "math",
    "canvas",
    "nav",
    "footer",
    "aside",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "button",
    "select",
    "textarea",
    "dialog",
]
_JUNK_SELECTOR = ", ".join(
    [
        '[role="navigation" i]',
        '[role="banner" i]',
        '[role="contentinfo" i]',
        '[role="dialog" i]',
        '[role="alertdialog" i]',
        '[role="search" i]',
        "[hidden]",
        '[style*="display:none" i]',
        '[style*="display: none" i]',
    ]
)
# class/id words that mark page furniture rather than content.
_FURNITURE_WORDS = frozenset(
    {
        "ad",
        "ads",
        "advert",
        "advertisement",
        "breadcrumb",
        "breadcrumbs",
        "comment",
        "comments",
        "consent",
        "cookie",
        "cookies",
        "gdpr",
        "masthead",
        "menu",
        "modal",
        "navbar",
        "newsletter",
        "popup",
        "promo",
        "related",
        "share",
        "sharing",
        "sidebar",
        "signup",
        "skip",
        "social",
        "sponsored",
        "subscribe",
        "toolbar",
    }
)
# Substring matches narrow the candidates in C; word matching in Python then confirms them.
_FURNITURE_SELECTOR = ", ".join(
    ["form", '[aria-hidden="true" i]']
    + [f'[{attr}*="{word}" i]' for word in sorted(_FURNITURE_WORDS) for attr in ("class", "id")]
)
_WORD = re.compile(r"[a-z0-9]+")
# Heuristic furniture is kept when it holds at least this share of the content's text.
_MAX_FURNITURE_SHARE = 0.5
# <main>/<article> is preferred when it holds this many characters and this share of the body.
_MIN_MAIN_CHARS = 250
_MIN_MAIN_SHARE = 0.25
_TITLE_SEPARATORS = ("|", "-", "\u2014", "\u2013", "\u00b7", "::", "\u00ab", "\u00bb")

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "caption",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "legend",
        "li",
        "main",
        "menu",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)


def extract_html(html: str, url: str) -> ExtractedText:
    """Parse the way a browser with scripting does, so `<noscript>` cannot break `<head>`."""
    tree = LexborHTMLParser(html, scripting=True)
    canonical = _canonical_url(tree, url)
    tree.strip_tags(_JUNK_TAGS, recursive=True)
    _remove(tree.css(_JUNK_SELECTOR) + [h for h in tree.css("header") if _is_page_header(h)])
    body = tree.body
    if body is None:  # a frameset: the text lives in other documents
        raise UnsupportedContent(NO_TEXT)
    root = _content_root(body)
    _remove_furniture(root)
    text = join(_paragraphs(root))
    return ExtractedText(title=_title(tree, root), text=text, canonical_url=canonical)


def _is_page_header(header: LexborNode) -> bool:
    """A site's banner, as opposed to an article's own header (its headline and standfirst)."""
    parent = header.parent
    while parent is not None:
        if parent.tag in {"article", "main"} or (
            (parent.attributes.get("role") or "").lower() == "main"
        ):
            return False
        parent = parent.parent
    return True


def _canonical_url(tree: LexborHTMLParser, url: str) -> str | None:
    """The `<link rel=canonical>` target as an absolute http(s) URL, if there is one."""
    link = tree.css_first('link[rel~="canonical" i][href]')
    if link is None:
        return None
    base = url
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        base = urljoin(url, (base_tag.attributes.get("href") or "").strip())
    href = (link.attributes.get("href") or "").strip()
    if not href:
        return None
    resolved = urljoin(base, href)
    parts = urlsplit(resolved)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return resolved


def _content_root(body: LexborNode) -> LexborNode:
    """`<main>` or `<article>` when it holds most of the text, else the whole body."""
    body_chars = len(body.text())
    for selector in ('main, [role="main" i]', "article"):
        candidates = body.css(selector)
        if not candidates:
            continue
        best = max(candidates, key=lambda node: len(node.text()))
        chars = len(best.text())
        if chars >= _MIN_MAIN_CHARS and chars >= _MIN_MAIN_SHARE * body_chars:
            return best
    return body


def _remove_furniture(root: LexborNode) -> None:
    """Remove forms, cookie notices, sidebars and link lists that have no landmark role.

    These are guesses (some sites wrap the whole page in a `<form>`, or name a content
    wrapper `has-sidebar`), so an element is only removed when it holds less than half of
    the content's text.
    """
    limit = _MAX_FURNITURE_SHARE * len(root.text())
    doomed: list[LexborNode] = []
    for node in root.css(_FURNITURE_SELECTOR):
        if node.tag in {"html", "body", "main", "article"}:
            continue
        if node.tag != "form" and (node.attributes.get("aria-hidden") or "").lower() != "true":
            words = _WORD.findall(
                f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}".lower()
            )
            if _FURNITURE_WORDS.isdisjoint(words):
                continue
        if len(node.text()) < limit:
            doomed.append(node)
    for node in root.css("ul, ol, menu"):
        links = node.css("a")
        if len(links) < 3:
            continue
        chars = len(normalize(node.text()))
        link_chars = sum(len(normalize(a.text())) for a in links)
        if link_chars >= 0.8 * chars and chars < limit:
            doomed.append(node)
    _remove(doomed)


def _remove(nodes: list[LexborNode]) -> None:
    """Decompose `nodes`, skipping any inside another one (already gone with its ancestor)."""
    ids = {node.mem_id for node in nodes}
    outermost = []
    for node in nodes:
        if node.tag in {"html", "body"}:
            continue
        parent = node.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            outermost.append(node)
    for node in outermost:
        node.decompose()


def _paragraphs(root: LexborNode) -> list[str]:
    """Text of `root` with a paragraph break wherever a block element starts or ends.

    Iterative, because real pages nest deeper than Python's recursion limit.
    """
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            paragraph = normalize("".join(buffer))
            buffer.clear()
            if paragraph and (not paragraphs or paragraphs[-1] != paragraph):
                paragraphs.append(paragraph)

    node = root.child
    while node is not None:
        tag = node.tag
        if tag == "-text":
            buffer.append(node.text_content or "")
        elif tag in _BLOCK_TAGS:
            flush()
        child = node.child if tag and tag[0] != "-" else None
        if child is not None:
            node = child
            continue
        # Leave `node` and every ancestor that has no next sibling, flushing blocks on exit.
        while node is not None:
            if node.tag in _BLOCK_TAGS:
                flush()
            sibling = node.next
            if sibling is not None:
                node = sibling
                break
            parent = node.parent
            node = None if parent is None or parent.mem_id == root.mem_id else parent
    flush()
    return paragraphs


def _title(tree: LexborHTMLParser, root: LexborNode) -> str | None:
    """og:title, else `<title>`, else the content's first `<h1>`.

    A `<title>` that is the `<h1>` plus a site name ("Headline | Site") gives way to the `<h1>`.
    """
    og = tree.css_first('meta[property="og:title" i][content], meta[name="og:title" i][content]')
    og_title = normalize(og.attributes.get("content") or "") if og is not None else ""
    head = tree.css_first("head title") or tree.css_first("title")
    head_title = normalize(head.text()) if head is not None else ""
    h1 = root.css_first("h1") or tree.css_first("h1")
    h1_title = normalize(h1.text()) if h1 is not None else ""
    suffix = head_title[len(h1_title) :].lstrip()
    if h1_title and head_title.startswith(h1_title) and suffix.startswith(_TITLE_SEPARATORS):
        head_title = h1_title
    return clip_title(og_title or head_title or h1_title)
