"""What a response body is, and how to decode it: the type from the header *and* the bytes.

Pages arrive with wrong or missing Content-Type headers and undeclared charsets, so the type
is decided from the header and the bytes (a PDF by its `%PDF-` signature whatever the header
says; known binary formats refused by theirs), and the charset from the BOM, the header, then
`<meta charset>`, as the HTML Standard does.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

from brief.errors import UnsupportedContent

BINARY = "the response is binary data, not text"

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})
# Types that say nothing about the body; the bytes decide.
_UNTYPED = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/unknown",
        "unknown/unknown",
    }
)

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/msword"),
    (b"\x7fELF", "application/x-executable"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
    (b"OggS\x00", "audio/ogg"),
    (b"ID3\x02", "audio/mpeg"),
    (b"ID3\x03", "audio/mpeg"),
    (b"ID3\x04", "audio/mpeg"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

SNIFF_BYTES = 1024
# A document that opens as HTML; strict enough to override a text/plain header.
_HTML_DOCUMENT = re.compile(
    r"\A(?:<!--.*?-->\s*|<\?xml[^>]*>\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S
)
# The HTML Standard's sniffing patterns, for bodies that arrive without a usable type.
_HTML_ANY = re.compile(
    r"\A<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p)"
    r"[\s>]|\A<!--",
    re.I,
)
_META_CHARSET = re.compile(rb"<meta\s[^>]*?charset\s*=\s*[\"']?\s*([a-z0-9_.:-]+)", re.I)
# Labels the HTML Standard reads as windows-1252, which is what such pages really contain.
_WINDOWS_1252_ALIASES = frozenset({"iso8859-1", "latin-1", "ascii"})
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")

Kind = Literal["html", "text"]


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """The lowercased media type and the charset parameter, if any."""
    if not value:
        return "", None
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, raw = param.partition("=")
        if key.strip().lower() == "charset":
            charset = raw.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def kind_of(body: bytes, media_type: str) -> Kind:
    """Whether to read the body as HTML or as plain text, from the header and the bytes."""
    head = body[:SNIFF_BYTES]
    signature = _binary_signature(head)
    if signature is not None:
        raise UnsupportedContent(f"unsupported content type {signature}")
    start = _sniff_text(head)
    if media_type in _HTML_TYPES:
        return "html"
    if media_type in _TEXT_TYPES:
        # Servers that label whole HTML documents text/plain are common; reading the markup
        # as prose would be useless, and nothing is rendered, so sniffing is safe here.
        return "html" if _HTML_DOCUMENT.match(start) else "text"
    if media_type in _XML_TYPES and _HTML_DOCUMENT.match(start):
        return "html"
    if media_type in _UNTYPED:
        return "html" if _HTML_ANY.match(start) or _HTML_DOCUMENT.match(start) else "text"
    raise UnsupportedContent(f"unsupported content type {media_type}")


def is_pdf(head: bytes, media_type: str) -> bool:
    """The bytes open as a PDF; under a PDF label, the signature may follow some junk."""
    if head.lstrip().startswith(b"%PDF-"):
        return True
    return media_type in PDF_TYPES and b"%PDF-" in head


def _binary_signature(head: bytes) -> str | None:
    """The media type of a well-known binary format the bytes start with, if any."""
    for magic, media_type in _SIGNATURES:
        if head.startswith(magic):
            return media_type
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _sniff_text(head: bytes) -> str:
    """The start of the body as text, enough to recognise markup, whitespace stripped."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head.decode(encoding, errors="ignore").lstrip()
    return head.decode("latin-1").lstrip()


def meta_charset(body: bytes) -> str | None:
    """The charset an HTML page declares in its first 1024 bytes, as the Standard prescans."""
    match = _META_CHARSET.search(body[:SNIFF_BYTES])
    if match is None:
        return None
    label = match.group(1).decode("ascii").lower()
    # A byte-oriented prescan cannot have found this in UTF-16, so the declaration is wrong.
    return "utf-8" if label.startswith("utf-16") else label


def decode(body: bytes, charset: str | None) -> str:
    """Decode by BOM, then `charset` when Python knows it as a text encoding, else UTF-8."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, errors="replace")
    if charset:
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            name = None
        if name is not None:
            if name in _WINDOWS_1252_ALIASES:
                name = "cp1252"
            try:
                return body.decode(name, errors="replace")
            except LookupError:  # a codec such as base64 that does not decode to text
                pass
            except UnicodeError:  # one that cannot replace what it fails on (idna, punycode)
                pass
    return body.decode("utf-8", errors="replace")


def refuse_binary(text: str) -> None:
    """Refuse bodies that decode to control characters: binary data under a text label."""
    sample = text[:4096]
    if "\x00" in sample or len(_CONTROL.findall(sample)) > len(sample) // 10:
        raise UnsupportedContent(BINARY)
