"""The offline extractive model: what it picks, what it cites, and that it never invents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from importlib.resources import files

import pytest

from brief.errors import SourceError
from brief.extraction import extract
from brief.extractive import ExtractiveSummarizer, by_source, split_sentences
from brief.extractive.summarizer import Finding, _lead, _themes
from brief.extractive.text import Excerpt, terms
from brief.ports import SourceText

QUESTION = "How do honeybees decide where to build a new nest?"

RELEVANT = [
    "Scout honeybees inspect hollow trees before the swarm decides on a new nest.",
    "A honeybee swarm decides where to build its nest once enough scouts agree on a site.",
]
IRRELEVANT = [
    "The weather in the valley was mild for most of the spring season.",
    "Farmers planted early potatoes along the river terraces that year.",
    "Local markets sold cheese, bread and smoked fish every Saturday morning.",
    "Rain fell heavily in April and the roads turned to deep mud.",
    "Children walked to the village school along the old stone bridge.",
    "The mill by the river ground flour for three neighbouring villages.",
    "Autumn brought a good harvest of apples and pears to the orchards.",
    "Travellers often stopped at the inn to rest their horses overnight.",
]


def source(text: str, n: int = 1, title: str | None = "A source") -> SourceText:
    return SourceText(n=n, title=title, url=f"https://example.org/{n}", text=text)


def normalized(text: str) -> str:
    return " ".join(text.split())


# split_sentences


def test_split_keeps_abbreviations_initials_and_decimals_inside_sentences() -> None:
    text = (
        "Dr. Seeley measured cavities of 3.5 to 40.0 litres, e.g. in hollow trees. "
        "J. R. Smith repeated the work in the U.S. The results matched. "
        "See Fig. 2 for the boxes, i.e. the ones used by Seeley et al. in Maine. "
        "It took approx. 40 minutes!"
    )

    assert split_sentences(text) == [
        "Dr. Seeley measured cavities of 3.5 to 40.0 litres, e.g. in hollow trees.",
        "J. R. Smith repeated the work in the U.S.",
        "The results matched.",
        "See Fig. 2 for the boxes, i.e. the ones used by Seeley et al. in Maine.",
        "It took approx. 40 minutes!",
    ]


def test_split_ends_sentences_at_question_marks_quotes_and_ellipses() -> None:
    text = 'Why do scouts dance? "They recruit." Then others follow… Some never return.'

    assert split_sentences(text) == [
        "Why do scouts dance?",
        '"They recruit."',
        "Then others follow…",
        "Some never return.",
    ]


def test_split_does_not_break_before_a_lowercase_word() -> None:
    assert split_sentences("The swarm waited approx. ten minutes. Then it left.") == [
        "The swarm waited approx. ten minutes.",
        "Then it left.",
    ]


def test_paragraph_breaks_end_sentences_and_line_wraps_do_not() -> None:
    text = "A heading without a full stop\n\nScouts search\nwidely for cavities. They dance."

    assert split_sentences(text) == [
        "A heading without a full stop",
        "Scouts search widely for cavities.",
        "They dance.",
    ]


def test_split_of_empty_text_is_empty() -> None:
    assert split_sentences(" \n\n ") == []


# summarize


async def test_summary_is_deterministic() -> None:
    model = ExtractiveSummarizer(sentences=3)
    text = " ".join(IRRELEVANT[:4] + RELEVANT + IRRELEVANT[4:])

    first = (await model.summarize(QUESTION, source(text))).text
    second = (await ExtractiveSummarizer(sentences=3).summarize(QUESTION, source(text))).text

    assert first == second


def test_output_does_not_depend_on_the_hash_seed() -> None:
    """Scores summed over sets must not change with set order, or stored records would."""
    program = """
import asyncio
from importlib.resources import files
from brief.extraction import extract
from brief.extractive import ExtractiveSummarizer
from brief.ports import SourceText

async def main() -> None:
    samples = files("brief_testing") / "samples"
    question = (samples / "question.txt").read_text()
    model = ExtractiveSummarizer(sentences=4, findings=6)
    names = sorted(p.name for p in samples.iterdir() if p.name[:2].isdigit())
    summaries = []
    for n, name in enumerate(names, start=1):
        page = extract((samples / name).read_bytes(), None, "https://samples.test/")
        text = SourceText(n=n, title=page.title, url=name, text=page.text)
        summary = (await model.summarize(question, text)).text
        summaries.append(SourceText(n=n, title=page.title, url=name, text=summary))
    print((await model.combine(question, summaries)).text)

asyncio.run(main())
"""
    outputs = set()
    for seed in ["1", "2", "3"]:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(  # noqa: S603 - our own interpreter running a fixed program
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)

    assert len(outputs) == 1
    assert "## Findings" in outputs.pop()


async def test_every_summary_sentence_is_a_sentence_of_the_source() -> None:
    text = "\n\n".join([" ".join(IRRELEVANT[:5]), " ".join(RELEVANT), " ".join(IRRELEVANT[5:])])

    summary = (await ExtractiveSummarizer(sentences=4).summarize(QUESTION, source(text))).text

    source_sentences = set(split_sentences(text))
    assert split_sentences(summary)
    assert set(split_sentences(summary)) <= source_sentences


async def test_question_relevant_sentences_are_preferred() -> None:
    text = " ".join([*IRRELEVANT[:5], RELEVANT[0], *IRRELEVANT[5:], RELEVANT[1]])

    summary = (await ExtractiveSummarizer(sentences=2).summarize(QUESTION, source(text))).text

    assert summary == " ".join(RELEVANT)


async def test_summary_keeps_the_source_order_of_sentences() -> None:
    text = " ".join([RELEVANT[1], *IRRELEVANT, RELEVANT[0]])

    summary = (await ExtractiveSummarizer(sentences=2).summarize(QUESTION, source(text))).text

    assert summary == f"{RELEVANT[1]} {RELEVANT[0]}"


async def test_summary_has_at_most_the_configured_number_of_sentences() -> None:
    text = " ".join(IRRELEVANT + RELEVANT)

    summary = (await ExtractiveSummarizer(sentences=3).summarize(QUESTION, source(text))).text

    assert 1 <= len(split_sentences(summary)) <= 3


async def test_summary_skips_near_duplicate_sentences() -> None:
    repeated = "Scout honeybees inspect hollow trees before the swarm decides on a new nest site."
    text = " ".join([RELEVANT[0], repeated, *IRRELEVANT])

    summary = (await ExtractiveSummarizer(sentences=2).summarize(QUESTION, source(text))).text

    assert (RELEVANT[0] in summary) != (repeated in summary)


async def test_fragments_headings_and_run_on_sentences_are_not_chosen() -> None:
    run_on = "Nest " + "honeybees decide nest build new " * 20 + "end."
    text = "\n\n".join(
        ["Honeybees decide new nest", "Nest build.", run_on, *IRRELEVANT[:3], RELEVANT[0]]
    )

    summary = (await ExtractiveSummarizer(sentences=2).summarize(QUESTION, source(text))).text

    assert "Honeybees decide new nest" not in summary
    assert "Nest build." not in summary
    assert run_on not in summary
    assert RELEVANT[0] in summary


async def test_a_text_of_fragments_still_gets_a_summary() -> None:
    text = "Nest sites\n\nCavity volume\n\nEntrance size"

    summary = (await ExtractiveSummarizer(sentences=2).summarize(QUESTION, source(text))).text

    assert summary in {"Nest sites Cavity volume", "Nest sites Entrance size"}


async def test_a_source_without_sentences_is_a_source_error() -> None:
    with pytest.raises(SourceError):
        await ExtractiveSummarizer().summarize(QUESTION, source("— · —"))


async def test_a_megabyte_of_text_is_summarized_quickly() -> None:
    """A guard against accidentally quadratic work, with a wide margin for slow machines."""
    words = [f"w{i}" for i in range(20_000)]
    sentences = [
        " ".join(words[(i * 7 + j * 13) % len(words)] for j in range(12)).capitalize() + "."
        for i in range(13_000)
    ]
    text = " ".join(sentences)
    assert len(text) >= 1_000_000

    started = time.perf_counter()
    await ExtractiveSummarizer().summarize(QUESTION, source(text))

    assert time.perf_counter() - started < 5.0


def test_name_identifies_the_model() -> None:
    assert ExtractiveSummarizer().name == "extractive-v3"


def test_sentence_and_finding_counts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExtractiveSummarizer(sentences=0)


# combine

SUMMARIES = [
    source(
        "Scouts inspect each cavity for many minutes before they dance. "
        "Honeybees prefer a nest cavity of about forty litres. "
        "Swarms decide on a new nest when enough scouts gather at one site.",
        n=3,
        title="Scouting",
    ),
    source(
        "Dances for better sites are longer and recruit more scouts to the nest site. "
        "Each scout dances less on every return, so support for a site must be renewed.",
        n=7,
        title="Dances",
    ),
]


def cited_numbers(markdown: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", markdown)}


def section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


async def test_combine_cites_only_the_given_sources() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, SUMMARIES)).text

    assert cited_numbers(body) == {3, 7}


async def test_the_answer_leads_with_cited_sentences_then_lists_findings() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, SUMMARIES)).text

    lead, rest = body.split("\n\n## Findings\n", 1)
    assert not lead.startswith("#")
    assert re.search(r"\. (\[\d+\])+$", lead)
    assert 1 <= len(split_sentences(re.sub(r" (\[\d+\])+", "", lead))) <= 3
    assert rest.strip()


def test_the_lead_prefers_sentences_that_stand_alone_to_a_pair() -> None:
    """A pair (a sentence and the one it leans on) can score best, yet tells a story: the lead
    takes the best single sentences among the first findings, and the pair stays a finding."""
    pair = (
        "The workers fill their honey stomachs before they leave.",
        "That honey is the swarm's only food for the next few days.",
    )
    texts = [
        pair,
        ("Scouts dance for the sites they find.",),
        ("The swarm flies to the site most scouts dance for.",),
        ("A cavity of forty litres suits a swarm.",),
        ("Swarms avoid cavities with large entrances.",),
    ]
    findings = [
        Finding(Excerpt(sentences=t, position=i, source=i + 1, score=1.0 - i / 10), {i + 1})
        for i, t in enumerate(texts)
    ]

    lead, rest = _lead(findings)

    assert [f.text for f in lead] == [t[0] for t in texts[1:4]]
    assert [f.text for f in rest] == [" ".join(pair), texts[4][0]]


async def test_every_finding_is_a_bullet_ending_with_citations() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, SUMMARIES)).text

    bullets = [line for line in section(body, "Findings").splitlines() if line.startswith("-")]
    assert bullets
    for bullet in bullets:
        assert re.fullmatch(r"- .+\. (\[\d+\])+", bullet)


async def test_findings_are_sentences_from_the_summaries() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, SUMMARIES)).text

    summary_sentences = {s for summary in SUMMARIES for s in split_sentences(summary.text)}
    for line in section(body, "Findings").splitlines():
        if line.startswith("-"):
            text = re.sub(r"^- | (\[\d+\])+$", "", line)
            assert set(split_sentences(text)) <= summary_sentences


async def test_a_sentence_that_points_back_comes_with_the_sentence_it_needs() -> None:
    summaries = [
        source(
            "Scouts inspect hollow trees far from the old nest. "
            "Honeybee swarms choose a nest cavity of about forty litres. "
            "This is why a swarm rarely settles in a small box.",
            n=1,
        ),
        source("A swarm decides on its new nest within a day or two of leaving.", n=2),
    ]

    body = (await ExtractiveSummarizer().combine(QUESTION, summaries)).text

    assert "This is why" in body
    assert "about forty litres. This is why a swarm rarely settles" in body


async def test_a_sentence_that_points_back_at_a_heading_is_never_chosen() -> None:
    text = (
        "Nest cavities\n\nThis is why honeybees decide on a new nest slowly and carefully.\n\n"
        f"{RELEVANT[0]}"
    )

    summary = (await ExtractiveSummarizer().summarize(QUESTION, source(text))).text

    assert "This is why" not in summary


async def test_questions_are_never_findings() -> None:
    text = f"How do honeybees decide where to build a new nest? {' '.join(RELEVANT)}"

    summary = (await ExtractiveSummarizer().summarize(QUESTION, source(text))).text

    assert "?" not in summary


async def test_the_samples_findings_are_grouped_under_short_theme_headings() -> None:
    samples = files("brief_testing") / "samples"
    question = (samples / "question.txt").read_text()
    model = ExtractiveSummarizer()
    summaries = []
    for n, name in enumerate(sorted(p.name for p in samples.iterdir() if p.name[:2].isdigit())):
        page = extract((samples / name).read_bytes(), None, "https://samples.test/")
        summary = await model.summarize(question, source(page.text, n=n + 1))
        summaries.append(source(summary.text, n=n + 1, title=page.title))

    body = (await model.combine(question, summaries)).text

    headings = re.findall(r"^### (.+)$", body, re.MULTILINE)
    assert len(headings) >= 2, body
    assert all(1 <= len(h.split()) <= 3 for h in headings)
    assert len(set(headings)) == len(headings)


def test_a_theme_takes_three_findings_two_that_share_a_word_are_not_one() -> None:
    texts = [
        "Scouts dance for each site they find.",
        "A scout dances longer for a better site.",
        "The swarm flies to the site most scouts dance for.",
        "A scout inspects a cavity for a long time.",
        "No single bee can sway the swarm for long.",
    ]
    findings = [
        Finding(
            Excerpt(
                sentences=(t,), position=i, source=1, tokens=terms(t), terms=frozenset(terms(t))
            ),
            {1},
        )
        for i, t in enumerate(texts)
    ]

    groups = _themes(findings)

    assert [[f.text for f in members] for _, members in groups] == [texts[:3], texts[3:]]
    assert groups[1][0] == "Other findings"  # not "Long"


async def test_near_duplicate_findings_are_merged_and_cite_both_sources() -> None:
    summaries = [
        source("Scouts choose a nest cavity of about forty litres in volume.", n=1),
        source("Other work on bees: scouts choose a nest cavity of about forty litres.", n=2),
    ]

    body = (await ExtractiveSummarizer().combine(QUESTION, summaries)).text

    assert body.count("forty litres") == 1
    assert re.search(r"forty litres[^\[]*\[1\]\[2\]", body)


async def test_findings_are_limited_to_the_configured_number() -> None:
    many = source(" ".join(IRRELEVANT + RELEVANT))

    body = (await ExtractiveSummarizer(findings=3).combine(QUESTION, [many])).text

    bullets = [line for line in body.splitlines() if line.startswith("- ")]
    assert len(bullets) <= 3


async def test_footnote_markers_and_markup_in_summaries_cannot_forge_citations() -> None:
    summaries = [
        source(
            "Scouts dance for the best nest site.[2] Old beekeeping notes call the new nest "
            "site a <script> of the swarm, and *stress* its [3] value.",
            n=1,
        )
    ]

    body = (await ExtractiveSummarizer().combine(QUESTION, summaries)).text

    assert cited_numbers(body) == {1}
    assert re.search(r"(?<!\\)<", body) is None  # every "<" is escaped: no raw HTML
    assert r"\<script>" in body


def test_by_source_names_a_source_without_a_title_by_its_url() -> None:
    assert "**[1] https://example.org/1** —" in by_source([source(RELEVANT[0], title=None)])


async def test_combine_is_deterministic() -> None:
    model = ExtractiveSummarizer()

    first = await model.combine(QUESTION, SUMMARIES)
    assert first == await model.combine(QUESTION, SUMMARIES)
    assert first.usage.calls == 0  # offline: no model calls, no cost


async def test_combine_without_summaries_says_nothing_could_be_summarized() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, [])).text

    assert "No source could be summarized" in body
    assert "[" not in body


async def test_summaries_without_usable_sentences_still_list_their_sources() -> None:
    body = (await ExtractiveSummarizer().combine(QUESTION, [source("", n=4, title="Empty")])).text

    assert "no sentences that could be listed as findings" in body
    assert "**[4] Empty** — No summary text." in body
    assert normalized(body).count("[4]") == 1


def test_stemming_is_safe_from_many_threads_at_once() -> None:
    # A Snowball stemmer keeps its word in progress on itself: shared between threads it
    # raised IndexError (found by `make eval`, whose local stack runs functions in threads).
    from brief.extractive.text import stem

    words = [f"{w}{i}" for i in range(2_000) for w in ("generational", "decisiveness")]
    alone = [stem.__wrapped__(w) for w in words]
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append([stem.__wrapped__(w) for w in words])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(r == alone for r in results)
