"""The PDF export draws what its bundled font can, and says so when a report has characters
it cannot (CJK, most emoji) instead of leaving silent blanks."""

from __future__ import annotations

from datetime import UTC, datetime

import pypdfium2  # type: ignore[import-untyped]

from brief.exports import missing_glyphs, to_pdf
from brief.models import Citation, Report


def report(markdown: str) -> Report:
    return Report(
        job_id="0" * 32,
        question="What do bees eat?",
        markdown=markdown,
        citations=[Citation(n=1, index=0, url="https://example.org/bees", title="Bees")],
        missing=[],
        model="extractive-v3",
        created_at=datetime(2026, 12, 3, tzinfo=UTC),
    )


def text_of(pdf_bytes: bytes) -> str:
    pdf = pypdfium2.PdfDocument(pdf_bytes)
    return " ".join(
        "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf))).split()
    )


def test_latin_greek_and_cyrillic_print_without_a_note() -> None:
    text = text_of(to_pdf(report("# What do bees eat?\n\nNectar, μέλι and мёд [1].\n")))
    assert "Nectar, μέλι and мёд" in text
    assert "no glyphs" not in text


def test_characters_the_font_lacks_are_named_in_a_note_at_the_top() -> None:
    text = text_of(to_pdf(report("# What do bees eat?\n\nBees eat 花蜜 and 花粉 [1].\n")))
    assert (
        "this PDF's font has no glyphs for 3 of the report's characters "
        "(U+82B1, U+871C, U+7C89)" in text
    )
    assert "The HTML and Word exports show every character." in text
    assert text.index("no glyphs") < text.index("Bees eat")


def test_missing_glyphs_lists_each_character_once_in_order() -> None:
    cmap = {ord(c) for c in "abc "}
    assert missing_glyphs("ab 花 c 花 蜜", cmap) == "花蜜"
