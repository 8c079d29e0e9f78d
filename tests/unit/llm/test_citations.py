"""Reports cite only sources that were given, in the one form the report renders."""

from __future__ import annotations

import pytest

from brief.llm.citations import cited, keep_citations, strip_citations


@pytest.mark.parametrize(
    ("text", "expected", "dropped"),
    [
        ("Bees dance [1].", "Bees dance [1].", set()),
        ("Bees dance [7].", "Bees dance.", {7}),
        ("Bees dance [1, 3] and vote [2-4].", "Bees dance [1][3] and vote [2][3][4].", set()),
        ("Bees dance [1; 9].", "Bees dance [1].", {9}),
        ("Bees dance [2\u20133].", "Bees dance [2][3].", set()),  # an en dash
        ("Quorum [0] then flight [12][2].", "Quorum then flight [2].", {0, 12}),
        ("Range [1-2000] is not a citation list.", "Range is not a citation list.", {1, 2000}),
        ("No markers at all.", "No markers at all.", set()),
    ],
)
def test_only_given_numbers_survive(text: str, expected: str, dropped: set[int]) -> None:
    assert keep_citations(text, {1, 2, 3, 4}) == (expected, dropped)


def test_strip_removes_a_pages_own_footnotes() -> None:
    assert strip_citations("Swarms split in spring [12] and summer [3, 4].") == (
        "Swarms split in spring and summer."
    )


def test_cited_lists_every_number() -> None:
    assert cited("A [1][3]. B [2-3].") == {1, 2, 3}
