"""Citation markers: `[n]` in a model's answer, kept only for sources that were given.

A model may cite a source that does not exist ("[7]" of five), group citations ("[1, 3]",
"[2-4]"), or copy footnote numbers from a page's text. Brief's reports cite `[n]` only
for retrieved sources, so answers are normalized to `[a][b]` and every other number in
brackets is removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["check_citations", "cited", "keep_citations", "strip_citations"]

# "[3]", "[1, 2]", "[1; 4]", "[2-4]" (or with an en dash); numbers of at most four digits.
_GROUP = re.compile(r"\[\s*(\d{1,4}(?:\s*[,;\-\u2013\u2014]\s*\d{1,4})*)\s*\]")
_PART = re.compile(r"(\d{1,4})(?:\s*[\-\u2013\u2014]\s*(\d{1,4}))?")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?)])")
_DOUBLE_SPACE = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_MAX_RANGE = 100  # "[1-2000]" is not a citation


def _numbers(group: str) -> list[int] | None:
    """The numbers a marker cites, or None when it is not a citation (a huge range)."""
    numbers: list[int] = []
    for match in _PART.finditer(group):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        if end < start or end - start > _MAX_RANGE:
            return None
        numbers.extend(range(start, end + 1))
    return numbers


def check_citations(text: str, allowed: Collection[int]) -> tuple[str, list[int]]:
    """`text` with every marker rewritten as `[a][b]` for allowed numbers only.

    Returns the new text and every number removed (cited but not given), in order, once per
    time it was cited: what a report tells its reader it removed.
    """
    allowed = set(allowed)
    removed: list[int] = []

    def rewrite(match: re.Match[str]) -> str:
        kept: list[int] = []
        numbers = _numbers(match.group(1))
        if numbers is None:
            removed.extend(int(n) for n in re.findall(r"\d+", match.group(1)))
            return ""
        for number in numbers:
            if number in allowed:
                if number not in kept:
                    kept.append(number)
            else:
                removed.append(number)
        return "".join(f"[{n}]" for n in kept)

    result = _GROUP.sub(rewrite, text)
    if removed:
        result = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", result)
        result = _DOUBLE_SPACE.sub(" ", result)
    return result, removed


def keep_citations(text: str, allowed: Collection[int]) -> tuple[str, set[int]]:
    """`text` with every marker rewritten as `[a][b]` for allowed numbers only.

    Returns the new text and the numbers that were dropped (cited but not given).
    """
    result, removed = check_citations(text, allowed)
    return result, set(removed)


def strip_citations(text: str) -> str:
    """`text` without any bracketed numbers (a page's own footnotes are not our sources)."""
    return keep_citations(text, ())[0]


def cited(text: str) -> set[int]:
    """The source numbers `text` cites."""
    return {n for match in _GROUP.finditer(text) for n in _numbers(match.group(1)) or ()}
