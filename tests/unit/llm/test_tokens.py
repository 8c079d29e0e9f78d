"""Token estimates err high, never low, and chunks respect the budget they were cut for."""

from __future__ import annotations

import itertools
import re

import pytest

from brief.llm.tokens import chunk, estimate_tokens
from tests.unit.llm.reference_texts import TEXTS

# Real counts of TEXTS: (OpenAI cl100k_base, the Claude tokenizer shipped in the anthropic
# package's tokenizer.json), counted offline once; neither tokenizer is a dependency.
REAL = {
    "prose": (201, 204),
    "sample_txt": (910, 948),
    "code": (119, 128),
    "numbers": (1209, 1217),
    "json": (1038, 875),
    "urls": (559, 814),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_estimate_is_above_real_tokenizers_but_not_wastefully(name: str) -> None:
    estimate = estimate_tokens(TEXTS[name])
    real = max(REAL[name])
    assert estimate >= real, "an estimate below the real count overflows context windows"
    assert estimate <= 1.35 * real, "an estimate far above the real count wastes the window"


def test_english_prose_costs_about_one_token_per_four_characters_or_less() -> None:
    text = TEXTS["prose"]
    assert len(text) / 5 <= estimate_tokens(text) <= len(text) / 3.5


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("", 0),
        ("word", 1),
        ("侦察蜂探索可能的巢穴", 10),  # CJK: about a token per character or more
        ("🐝🐝🐝", 9),  # emoji: several bytes, several tokens each
        ("1234567890", 5),
    ],
)
def test_non_prose_is_not_underestimated(text: str, at_least: int) -> None:
    assert estimate_tokens(text) >= at_least


def _document(paragraphs: int) -> str:
    sentence = "Scouts inspect cavity number {i} and report its volume of {v} litres. "
    return "\n\n".join(
        "".join(sentence.format(i=p * 10 + s, v=(p * 7 + s) % 90) for s in range(1 + p % 6))
        for p in range(paragraphs)
    )


@pytest.mark.parametrize(("max_tokens", "overlap"), [(40, 0), (60, 10), (200, 50), (1000, 100)])
def test_every_chunk_fits_its_budget_and_all_the_text_is_covered(
    max_tokens: int, overlap: int
) -> None:
    text = _document(120)
    chunks = chunk(text, max_tokens, overlap)
    assert all(estimate_tokens(c) <= max_tokens for c in chunks)
    words = set(re.findall(r"\w+", text))
    assert words == set(re.findall(r"\w+", " ".join(chunks)))
    if max_tokens > 100:
        assert len(chunks) <= 2 * estimate_tokens(text) / (max_tokens - overlap) + 1


def test_chunks_break_between_paragraphs_when_paragraphs_fit() -> None:
    paragraphs = [f"Paragraph {i} is short. It has two sentences." for i in range(30)]
    chunks = chunk("\n\n".join(paragraphs), 50)
    for piece in chunks:
        assert piece.split("\n\n")[0] in paragraphs
        assert piece.split("\n\n")[-1] in paragraphs


def test_a_long_paragraph_breaks_between_sentences() -> None:
    paragraph = " ".join(f"Sentence {i} says one thing about bees." for i in range(80))
    chunks = chunk(paragraph, 60)
    assert len(chunks) > 1
    assert all(c.endswith("bees.") for c in chunks)


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    blob = "x" * 5000
    chunks = chunk(f"Before. {blob} After.", 100)
    assert all(estimate_tokens(c) <= 100 for c in chunks)
    assert sum(c.count("x") for c in chunks) == 5000


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"Fact {i} is stated here in full." for i in range(60))
    chunks = chunk(text, 60, overlap_tokens=15)
    for previous, current in itertools.pairwise(chunks):
        last_sentence = previous.rsplit(". ", 1)[-1]
        assert last_sentence in current


def test_chunk_refuses_a_budget_below_one_token() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunk("text", 0)
