"""Turn a fetched response body into the readable text a summarizer can use.

`extract` decides what the body is from its header and its bytes (`sniff`), then reads it as
HTML (`html`: boilerplate removed), PDF (`pdf`: the text layer) or plain text (`text`).
Anything that is not text is refused with `UnsupportedContent`, whose reason is shown to the
user.
"""

from __future__ import annotations

from brief.extraction.html import extract_html
from brief.extraction.pdf import (
    PDF_DAMAGED,
    PDF_ENCRYPTED,
    PDF_NO_PAGES,
    PDF_NO_TEXT,
    PDF_UNSUPPORTED_SECURITY,
    PdfLimits,
    extract_pdf,
)
from brief.extraction.sniff import (
    BINARY,
    PDF_TYPES,
    SNIFF_BYTES,
    decode,
    is_pdf,
    kind_of,
    meta_charset,
    parse_content_type,
    refuse_binary,
)
from brief.extraction.text import NO_TEXT, ExtractedText, extract_plain_text

__all__ = [
    "BINARY",
    "NO_TEXT",
    "PDF_DAMAGED",
    "PDF_ENCRYPTED",
    "PDF_NO_PAGES",
    "PDF_NO_TEXT",
    "PDF_UNSUPPORTED_SECURITY",
    "ExtractedText",
    "PdfLimits",
    "extract",
]

_PDF_LIMITS = PdfLimits()


def extract(
    body: bytes, content_type: str | None, url: str, *, pdf_limits: PdfLimits = _PDF_LIMITS
) -> ExtractedText:
    """The readable text of a response; raises UnsupportedContent when there is none.

    `url` is the page's final URL, against which a relative canonical link is resolved.
    A PDF costs CPU in proportion to its size (see `PdfLimits`); callers on an event loop
    should run this in a thread.
    """
    media_type, header_charset = parse_content_type(content_type)
    if is_pdf(body[:SNIFF_BYTES], media_type):
        return extract_pdf(body, pdf_limits)
    if media_type in PDF_TYPES:
        media_type = ""  # labelled a PDF but without its bytes: the bytes decide what it is
    if kind_of(body, media_type) == "html":
        html = decode(body, header_charset or meta_charset(body))
        refuse_binary(html)
        return extract_html(html, url)
    text = decode(body, header_charset)
    refuse_binary(text)
    return extract_plain_text(text)
