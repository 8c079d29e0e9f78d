"""The fake model's answers and its tokenizer: deterministic, and meaningful enough for tests
(the material's sentences that best match the question, with their citation markers)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MARKER = re.compile(r"\[(\d{1,4})\]")
_BLOCK_HEAD = re.compile(r"^\[(\d{1,4})\]\s")
_MATERIAL = re.compile(r"<(source|notes)>\n?(.*?)\n?</\1>", re.S)
_SPACE_BEFORE_STOP = re.compile(r"\s+([.,;:!?])")
_QUESTION = re.compile(r"^Question:\s*(.+)$", re.M)
MESSAGE_OVERHEAD = 4
_STOPWORD_TEXT = """a an and are as at be by do does for from how in is it its of on or that the
this to was what when where which who why with"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def count_tokens(text: str) -> int:
    """The fake's tokenizer: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def answer_for(
    system: str, prompt: str, *, max_tokens: int, sentences: int = 6
) -> tuple[str, int, bool]:
    """The fake model's answer: the material's sentences that best match the question.

    Returns the text, its token count and whether `max_tokens` cut it short.
    """
    question_match = _QUESTION.search(prompt)
    question = question_match.group(1) if question_match else prompt[:200]
    wanted = {w for w in _WORD.findall(question.lower()) if w not in _STOPWORDS and len(w) > 2}
    materials = [m.group(2) for m in _MATERIAL.finditer(prompt)] or [prompt]
    candidates: list[
        tuple[int, int, str, tuple[int, ...]]
    ] = []  # (-score, position, text, markers)
    seen: set[str] = set()
    position = 0
    for material in materials:
        block: tuple[int, ...] = ()
        for line in material.splitlines():
            head = _BLOCK_HEAD.match(line)
            if head:
                block = (int(head.group(1)),)
                continue  # the "[n] Title (url)" line itself is not a claim
            for sentence in _SENTENCE_END.split(line.strip()):
                markers = tuple(int(n) for n in _MARKER.findall(sentence)) or block
                plain = _SPACE_BEFORE_STOP.sub(r"\1", " ".join(_MARKER.sub("", sentence).split()))
                if len(plain) < 12 or plain in seen:
                    continue
                seen.add(plain)
                score = len(wanted & set(_WORD.findall(plain.lower())))
                candidates.append((-score, position, plain, markers))
                position += 1
    chosen = sorted(sorted(candidates)[:sentences], key=lambda c: c[1])
    parts: list[str] = []
    used = 0
    truncated = False
    for _, _, plain, markers in chosen:
        piece = _cite(plain, markers)
        cost = count_tokens(piece)
        if used + cost > max_tokens:
            words = piece.split()
            while words and used + count_tokens(" ".join(words)) > max_tokens:
                words.pop()
            if words:
                parts.append(" ".join(words))
                used += count_tokens(parts[-1])
            truncated = True
            break
        parts.append(piece)
        used += cost
    text = " ".join(parts) or "The material does not address the question."
    return text, count_tokens(text), truncated


def _cite(sentence: str, markers: tuple[int, ...]) -> str:
    """`sentence` with its markers where a model puts them: before the final stop."""
    if not markers:
        return sentence
    cites = "".join(f"[{n}]" for n in dict.fromkeys(markers))
    if sentence[-1] in ".!?":
        return f"{sentence[:-1]} {cites}{sentence[-1]}"
    return f"{sentence} {cites}"


def deltas(text: str) -> list[str]:
    """The answer as a model streams it: a word (with its leading space) at a time."""
    return re.findall(r"\s*\S+", text) or [text]
