"""`make eval`'s metrics on small hand-made reports: each finds what it claims to find."""

from __future__ import annotations

import pytest

from bench.eval.cases import CASES, Case, Nugget, Source, check, load_all, stems
from bench.eval.metrics import claims, score

SOURCE_1 = (
    "Scouts search the countryside for hollow trees. They inspect each cavity for an hour. "
    "A cavity of about forty litres suits a swarm."
)
SOURCE_2 = "Scouts advertise a good site with a waggle dance. Dances for better sites last longer."
TEXTS = {1: SOURCE_1, 2: SOURCE_2}
NUGGETS = (
    Nugget("forty-litres", "About forty litres.", (("forty litres", "40 litres"),), ("a",)),
    Nugget("waggle", "Waggle dance.", (("waggle",), ("dance",)), ("b",)),
    Nugget("quorum", "A quorum decides.", (("quorum",),), ("a",)),
)
CASE = Case("test", "How do honeybees choose a nest?", "how", (), NUGGETS)


def report(body: str) -> str:
    return (
        f"# {CASE.question}\n\n{body}\n\n## Sources\n\n"
        "- [1] [One](https://one.test/)\n- [2] [Two](https://two.test/)\n"
    )


def test_recall_is_the_share_of_nuggets_some_sentence_states() -> None:
    result = score(
        CASE,
        report(
            "A cavity of about forty litres suits a swarm. [1] "
            "Scouts advertise a good site with a waggle dance. [2]"
        ),
        TEXTS,
    )

    assert result.found == ["forty-litres", "waggle"]
    assert result.recall == pytest.approx(2 / 3)


def test_a_nugget_split_across_two_sentences_is_not_found() -> None:
    nugget = NUGGETS[1]
    assert nugget.found_in("Scouts dance a waggle dance.")
    assert not nugget.found_in("Scouts waggle. Then they dance.")
    assert stems("Dances, dancing") == stems("dance dance")


def test_a_citation_of_a_source_that_does_not_say_it_is_unsupported() -> None:
    result = score(CASE, report("A cavity of about forty litres suits a swarm. [2]"), TEXTS)

    assert result.unsupported == ["[2] A cavity of about forty litres suits a swarm."]
    assert result.cited_sentences == 1


def test_a_paraphrase_that_keeps_most_words_is_supported() -> None:
    result = score(CASE, report("Scouts inspect every cavity for about an hour. [1]"), TEXTS)

    assert result.unsupported == []


def test_a_citation_of_a_source_the_report_does_not_list_is_invented() -> None:
    result = score(CASE, report("Scouts search for hollow trees. [1][7]"), TEXTS)

    assert result.invented == [7]
    assert result.unsupported == []


def test_uncited_sentences_are_counted() -> None:
    result = score(
        CASE, report("Bees are insects.\n\n- Scouts search for hollow trees. [1]"), TEXTS
    )

    assert result.uncited_sentences == 1
    assert result.findings == 1


def test_a_finding_that_repeats_another_is_redundant() -> None:
    body = (
        "- Scouts search the countryside for hollow trees. [1]\n"
        "- Dances for better sites last longer. [2]\n"
        "- The scouts search for hollow trees in the countryside. [1]"
    )

    result = score(CASE, report(body), TEXTS)

    assert len(result.redundant) == 1
    assert result.redundant[0].startswith("The scouts search for hollow trees")
    assert result.redundancy == pytest.approx(1 / 3)


def test_a_finding_that_states_only_facts_already_stated_in_other_words_is_restated() -> None:
    body = (
        "- Scouts advertise a good site with a waggle dance. [2]\n"
        "- A waggle dance is how a scout tells the others about a site. [2]\n"
        "- A waggle dance for a cavity of about forty litres lasts longer. [1][2]"
    )

    result = score(CASE, report(body), TEXTS)

    assert result.redundant == []  # too few words in common for the word match
    assert result.restated == [
        "A waggle dance is how a scout tells the others about a site. (waggle)"
    ]
    assert result.restatement == pytest.approx(1 / 3)


def test_the_lead_counts_its_sentences_that_state_a_nugget() -> None:
    body = (
        "A cavity of about forty litres suits a swarm. [1] Scouts search for hollow trees. [1]\n\n"
        "## Findings\n\n- Scouts advertise a good site with a waggle dance. [2]"
    )

    result = score(CASE, report(body), TEXTS)

    assert (result.lead_stating, result.lead_sentences) == (1, 2)


def test_a_sentence_that_points_back_at_nothing_is_dangling() -> None:
    body = "- They inspect each cavity for an hour. [1]\n- Scouts search for hollow trees. [1]"

    result = score(CASE, report(body), TEXTS)

    assert result.dangling == ["They inspect each cavity for an hour."]


def test_a_quoted_sentence_after_one_its_source_did_not_have_before_it_is_dangling() -> None:
    body = (
        "Dances for better sites last longer. [2] They inspect each cavity for an hour. [1]\n\n"
        "- Scouts search the countryside for hollow trees. They inspect each cavity for an "
        "hour. [1]"
    )

    result = score(CASE, report(body), TEXTS)

    assert result.dangling == ["They inspect each cavity for an hour."]  # the lead's, once


def test_claims_are_cut_after_each_run_of_citations() -> None:
    found = claims("One thing. [1] Two things. Three. [2][3]\n\n### Theme\n\n- Four. [1]")

    assert [(c.sentences, c.cites, c.first_in_block) for c in found] == [
        (["One thing."], [1], True),
        (["Two things.", "Three."], [2, 3], False),
        (["Four."], [1], True),
    ]


HELD_OUT = CASES.parent / "heldout"


@pytest.mark.parametrize("case", load_all() + load_all(HELD_OUT), ids=lambda c: c.slug)
def test_every_bundled_nugget_is_stated_by_its_sources_and_by_no_off_topic_one(
    case: Case,
) -> None:
    assert check(case) == []
    assert 3 <= len(case.sources) <= 6
    assert all(isinstance(s, Source) for s in case.sources)


def test_the_bundled_set_covers_the_kinds_formats_and_roles_it_promises() -> None:
    cases = load_all()
    assert len(cases) >= 8
    assert {c.kind for c in cases} == {"how", "why", "compare", "number", "list"}
    suffixes = {s.path.suffix for c in cases for s in c.sources}
    assert {".html", ".txt", ".pdf"} <= suffixes
    roles = {s.role for c in cases for s in c.sources}
    assert {"off-topic", "contradicts"} <= roles
