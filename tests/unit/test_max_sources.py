"""A job's `max_sources`: which of the documents retrieved are summarized, and which are
listed as skipped, and the limit's validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brief.models import ResearchRequest, SourceOutcome, within_limit

SOURCES = [
    "https://a.example/page",
    {"search": "honeybee swarms", "limit": 3},
    "https://b.example/page",
]


def outcomes(*failed: int) -> list[SourceOutcome]:
    """One outcome per slot of SOURCES (5 slots), the `failed` ones failed."""
    return [
        SourceOutcome(
            index=i,
            url=f"https://x.example/{i}",
            state="failed" if i in failed else "ok",
            reason="404" if i in failed else None,
        )
        for i in range(5)
    ]


def request(max_sources: int | None) -> ResearchRequest:
    return ResearchRequest.model_validate(
        {"question": "How do bees pick a nest?", "sources": SOURCES, "max_sources": max_sources}
    )


def states(result: list[SourceOutcome]) -> list[str]:
    return [o.state for o in result]


def test_sources_take_turns_so_a_search_does_not_crowd_out_the_urls() -> None:
    kept = within_limit(request(3).sources, outcomes(), 3)
    # The first URL, the search's first result, the second URL; the search's others skipped.
    assert states(kept) == ["ok", "ok", "skipped", "skipped", "ok"]
    assert kept[2].reason == "not summarized: the job asked for at most 3 sources"
    assert not kept[2].usable


def test_a_failed_document_leaves_its_turn_to_the_next_of_its_source() -> None:
    kept = within_limit(request(3).sources, outcomes(1), 3)
    assert states(kept) == ["ok", "failed", "ok", "skipped", "ok"]


def test_no_limit_or_a_limit_above_the_usable_skips_nothing() -> None:
    assert states(within_limit(request(None).sources, outcomes(), None)) == ["ok"] * 5
    assert states(within_limit(request(9).sources, outcomes(0), 9)) == ["failed"] + ["ok"] * 4


@pytest.mark.parametrize("bad", [0, -1, 51, "five"])
def test_a_limit_outside_1_to_50_is_refused_with_the_field_named(bad: object) -> None:
    with pytest.raises(ValidationError) as raised:
        request(bad)  # type: ignore[arg-type]
    assert raised.value.errors()[0]["loc"] == ("max_sources",)
