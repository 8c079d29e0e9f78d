"""The report's list of sources: each by its own number, the same page once."""

from __future__ import annotations

from brief.models import Citation, SourceOutcome
from brief.pipeline import render_markdown

PAGE = "https://bees.example/swarms.html"


def test_the_same_page_reached_two_ways_is_one_entry_under_both_numbers() -> None:
    citations = [
        Citation(n=1, index=0, url=PAGE, title="Swarms"),
        Citation(n=2, index=1, url="https://other.example/", title="Other"),
        # The same page again: a passage of it from a vector index, spelled differently.
        Citation(n=4, index=3, url="https://BEES.example:443/swarms.html#part-2", title=None),
    ]

    markdown = render_markdown("Why?", "Scouts dance [1][4]. Bees [2].", citations, [])

    sources = markdown.split("## Sources\n\n", 1)[1].strip().splitlines()
    assert sources == [
        f"- [1][4] [Swarms]({PAGE})",
        "- [2] [Other](https://other.example/)",
    ]


def test_sources_not_used_keep_their_own_numbers() -> None:
    missing = [SourceOutcome(index=2, url="https://gone.example/", state="failed", reason="404")]
    citations = [Citation(n=1, index=0, url=PAGE, title="Swarms")]

    markdown = render_markdown("Why?", "Scouts dance [1].", citations, missing)

    assert markdown.endswith("## Sources not used\n\n- [3] https://gone.example/ — 404\n")
