"""Readable text, whatever it was read from: the result, and the rules for its paragraphs
and titles that HTML, PDF and plain text share."""

from __future__ import annotations

import re
from dataclasses import dataclass

from brief.errors import UnsupportedContent

NO_TEXT = "the page has no readable text"

_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u00ad\u200b\u2060\ufeff]")
_BLANK_LINE = re.compile(r"\n[ \t\f\v\r]*\n")
_MAX_TITLE_CHARS = 300
_MAX_TEXT_TITLE_CHARS = 120


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """A page's readable text: paragraphs separated by one blank line."""

    title: str | None
    text: str
    canonical_url: str | None


def extract_plain_text(text: str) -> ExtractedText:
    """A plain-text document as paragraphs (split at blank lines); its first line may title it."""
    blocks = _BLANK_LINE.split(text.replace("\r\n", "\n").replace("\r", "\n").strip())
    joined = join([normalize(block) for block in blocks])
    return ExtractedText(title=text_title(blocks[0]), text=joined, canonical_url=None)


def text_title(block: str) -> str | None:
    """A plain-text document's first line, when it stands alone and reads like a heading."""
    line = block.strip()
    if not line or "\n" in line or len(line) > _MAX_TEXT_TITLE_CHARS or line[-1] in ".!?,;:":
        return None
    return clip_title(normalize(line))


def clip_title(title: str) -> str | None:
    """At most 300 characters, cut at a word with `…`; None for an empty title."""
    if len(title) > _MAX_TITLE_CHARS:
        title = title[:_MAX_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return title or None


def normalize(text: str) -> str:
    """Collapse every run of whitespace (including no-break spaces) to one space."""
    return " ".join(_INVISIBLE.sub("", text).split())


def join(paragraphs: list[str]) -> str:
    """The paragraphs as one text; a text with no paragraph at all is refused."""
    text = "\n\n".join(p for p in paragraphs if p)
    if not text:
        raise UnsupportedContent(NO_TEXT)
    return text
