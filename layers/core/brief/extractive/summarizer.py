"""The offline default model: query-focused extractive summaries, and a report that answers
the question first, then groups its findings by theme. No network, no key.

It only ever *selects* sentences, so everything it says is something a source said, and the
same input always gives the same output (which makes stored records and tests stable).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from brief.errors import SourceError
from brief.extractive.scoring import diverse, score_relevance
from brief.extractive.text import (
    Excerpt,
    excerpts,
    jaccard,
    markdown,
    question_terms,
    split_sentences,
    surface_words,
    without_footnotes,
)
from brief.ports import ModelText

if TYPE_CHECKING:
    from brief.ports import OnModelRetry, OnText, SourceText

NO_SOURCES = "No source could be summarized, so this report has no findings."
NO_FINDINGS = "The summaries contain no sentences that could be listed as findings."

# Summarize: how an excerpt's score weighs its relevance, how central its terms are to the
# text, and how early it comes.
RELEVANCE_WEIGHT = 0.3
CENTRALITY_WEIGHT = 0.6
POSITION_WEIGHT = 0.15
# Below this relevance (the best excerpt has 1) an excerpt is off the question: it is used
# only when too little else is.
MIN_RELEVANCE = 0.2
# Combine: two excerpts sharing this much of their terms say the same thing (one finding,
# citing both).
NEAR_DUPLICATE = 0.5
# Combine: how much a finding gains for using the terms most sources use (the topic's own).
CONSENSUS_WEIGHT = 1.0
# Combine: how much of a finding's score depends on how much its source bears on the question.
SOURCE_WEIGHT = 0.5
# Combine: a finding scores at least this share of the best one's; and how much a finding
# loses, times its overlap with the closest finding chosen before it (maximal marginal
# relevance).
MIN_SHARE_OF_BEST = 0.35
DIVERSITY = 0.6
# A summary from another model could be long; combine reads this many excerpts of each.
MAX_EXCERPTS_PER_SUMMARY = 40
# The lead: the best findings, at most this many sentences, that answer the question, chosen
# among this many of the best.
LEAD_SENTENCES = 3
LEAD_CANDIDATES = 6
# Themes: at most this many headed groups, each of at least this many findings that share a
# term (two share one by chance too often: "a long inspection" and "sway the swarm for long").
MAX_THEMES = 4
MIN_THEME = 3
OTHER_THEME = "Other findings"


class ExtractiveSummarizer:
    """Summarizes by choosing the excerpts that bear on the question; combines by choosing
    findings across sources, preferring those several sources agree on.

    Pure CPU and deterministic: no network, no key, and no dependence on hash order.
    """

    local_stages: frozenset[str] = frozenset({"summarize", "combine"})
    """Both outputs take milliseconds to make again: not worth a cache (`worth_caching`)."""

    def __init__(self, *, sentences: int = 8, findings: int = 10) -> None:
        if sentences < 1 or findings < 1:
            raise ValueError("sentences and findings must be at least 1")
        self._sentences = sentences
        self._findings = findings

    @property
    def name(self) -> str:
        """Stored with every summary and report; change it when the output would change."""
        return "extractive-v3"

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        """At most `sentences` sentences of `source` that best answer `question`, in text
        order, each with any sentence before it that it leans on.

        Raises SourceError when the source has no sentence at all to choose (and never
        retries anything, so `on_retry` is never called).
        """
        found = excerpts(split_sentences(source.text))
        if not found:
            raise SourceError("the source has no sentences to summarize")
        score_relevance(question, question_terms(question), found)
        _score_in_text(found)
        on_topic = [p for p in found if p.relevance >= MIN_RELEVANCE]
        pool = on_topic if len(on_topic) >= 2 else found
        chosen: list[Excerpt] = []
        taken: set[int] = set()
        used = 0
        for excerpt in diverse(pool, len(pool), penalty=0.5):
            if used >= self._sentences:
                break
            if taken & set(excerpt.span) or used + len(excerpt.sentences) > self._sentences:
                continue
            if any(jaccard(excerpt.terms, c.terms) >= NEAR_DUPLICATE for c in chosen):
                continue  # says what a chosen excerpt says
            chosen.append(excerpt)
            taken |= set(excerpt.span)
            used += len(excerpt.sentences)
        chosen.sort(key=lambda p: p.position)
        return ModelText(" ".join(p.text for p in chosen))

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        """A Markdown body: a lead of the best findings that answers the question, then
        `## Findings`, grouped under `### Theme` headings, each with `[n]` citations.

        The caller adds the title and the list of sources. Sentence text is Markdown-escaped
        and stripped of footnote markers, so no `[n]` appears that this method did not write.
        """
        if not summaries:
            return ModelText(NO_SOURCES)
        findings = self._findings_for(question, summaries)
        if not findings:
            return ModelText(f"{NO_FINDINGS}\n\n{by_source(summaries)}")
        lead, rest = _lead(findings)
        lines = [" ".join(f"{markdown(f.text)} {f.citations}" for f in lead), ""]
        if rest:
            lines += ["## Findings", ""]
            groups = _themes(rest)
            for heading, group in groups:
                if len(groups) > 1:
                    lines += [f"### {markdown(heading)}", ""]
                lines += [f"- {markdown(f.text)} {f.citations}" for f in group]
                lines.append("")
        return ModelText("\n".join(lines).rstrip() + "\n")

    def _findings_for(self, question: str, summaries: Sequence[SourceText]) -> list[Finding]:
        """The lead's and the findings' excerpts, best first: relevant, agreed on, diverse."""
        ranked = candidates(question, summaries)
        if not ranked:
            return []
        best = ranked[0].lead.score
        strong = [f.lead for f in ranked if f.lead.score >= MIN_SHARE_OF_BEST * best]
        chosen = diverse(strong, LEAD_SENTENCES + self._findings, penalty=DIVERSITY)
        by_lead = {id(f.lead): f for f in ranked}
        return [by_lead[id(p)] for p in chosen]


def candidates(question: str, summaries: Sequence[SourceText]) -> list[Finding]:
    """Every finding the report could choose, best score first: the summaries' excerpts that
    bear on the question, one per thing said, scored by relevance and agreement and weighted
    by their source. The report takes the best that stay diverse; `make eval` reads the rest
    to say where a missed fact ranked."""
    found: list[Excerpt] = []
    for summary in summaries:
        split = split_sentences(without_footnotes(summary.text))
        found += excerpts(split, min_words=3, source=summary.n)[:MAX_EXCERPTS_PER_SUMMARY]
    if not found:
        return []
    score_relevance(question, question_terms(question), found)
    on_topic = [p for p in found if p.relevance >= MIN_RELEVANCE]
    pool = _apart(on_topic if len(on_topic) >= 3 else found)
    merged = _merge(pool)
    consensus = _consensus(found, question_terms(question))
    weight = _source_weights(found)
    for finding in merged:
        finding.lead.score = weight[finding.lead.source] * (
            finding.lead.relevance + CONSENSUS_WEIGHT * consensus(finding.lead)
        )
    return sorted(merged, key=lambda f: (-f.lead.score, f.lead.source, f.lead.position))


@dataclass(slots=True)
class Finding:
    """An excerpt for the report and the sources that say the same (cited with it)."""

    lead: Excerpt
    sources: set[int]

    @property
    def text(self) -> str:
        return self.lead.text

    @property
    def citations(self) -> str:
        return "".join(f"[{n}]" for n in sorted(self.sources))


def _score_in_text(found: list[Excerpt]) -> None:
    """A summary's score: relevance, plus how central an excerpt's terms are to its text and,
    a little, how early it comes."""
    tf: Counter[str] = Counter()
    for p in found:
        tf.update(p.tokens)
    last = max(p.position for p in found) or 1
    raw = {
        id(p): math.fsum(math.log(tf[t]) for t in p.terms) / math.sqrt(len(p.terms))
        if p.terms
        else 0.0
        for p in found
    }
    top = max(raw.values()) or 1.0
    for p in found:
        central = raw[id(p)] / top
        p.score = (
            RELEVANCE_WEIGHT * p.relevance
            + CENTRALITY_WEIGHT * central
            + POSITION_WEIGHT * (1 - p.position / last)
        )


def _consensus(found: list[Excerpt], q_terms: frozenset[str]) -> Callable[[Excerpt], float]:
    """How much an excerpt's terms are the ones most sources use (beyond the question's own):
    the mean, over its terms, of the share of the other sources that use each."""
    sources_of: dict[str, set[int]] = {}
    for p in found:
        for t in p.terms:
            sources_of.setdefault(t, set()).add(p.source)
    others = max(len({p.source for p in found}) - 1, 1)

    def share(excerpt: Excerpt) -> float:
        own = excerpt.terms - q_terms
        if not own:
            return 0.0
        return math.fsum((len(sources_of[t]) - 1) / others for t in own) / len(own)

    return share


def _source_weights(found: list[Excerpt]) -> dict[int, float]:
    """How much each source bears on the question as a whole (the mean relevance of its best
    excerpts, the best source's being 1), as a factor from `1 - SOURCE_WEIGHT` to 1: a page
    that is near the topic but not about the question gives fewer findings."""
    by_source: dict[int, list[float]] = {}
    for p in found:
        by_source.setdefault(p.source, []).append(p.relevance)
    means = {n: math.fsum(sorted(r)[-3:]) / min(3, len(r)) for n, r in by_source.items()}
    top = max(means.values()) or 1.0
    return {n: 1 - SOURCE_WEIGHT + SOURCE_WEIGHT * m / top for n, m in means.items()}


def _apart(found: list[Excerpt]) -> list[Excerpt]:
    """The excerpts without overlaps: where two of one text share a sentence, the more
    relevant one (the earlier on a tie)."""
    kept: list[Excerpt] = []
    taken: dict[int, set[int]] = {}
    for p in sorted(found, key=lambda p: (-p.relevance, p.source, p.position)):
        spans = taken.setdefault(p.source, set())
        if spans.isdisjoint(p.span):
            kept.append(p)
            spans.update(p.span)
    return kept


def _merge(found: list[Excerpt]) -> list[Finding]:
    """One finding per thing said: an excerpt that repeats a better one (another source's)
    adds its source to that finding's citations."""
    merged: list[Finding] = []
    for excerpt in sorted(found, key=lambda p: (-p.relevance, p.source, p.position)):
        same = next(
            (
                f
                for f in merged
                if f.lead.source != excerpt.source
                and jaccard(excerpt.terms, f.lead.terms) >= NEAR_DUPLICATE
            ),
            None,
        )
        if same is not None:
            same.sources.add(excerpt.source)
            continue
        merged.append(Finding(lead=excerpt, sources={excerpt.source}))
    return merged


def _lead(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """The lead, up to `LEAD_SENTENCES` sentences (at least one finding), and the rest in
    their order.

    The lead is the best of the first `LEAD_CANDIDATES` findings by score, those of one
    sentence first: an excerpt of two exists because its second sentence leans on the first
    ("... fill their honey stomachs. That load of honey is ..."), which tells a story more
    often than it answers, and it would take two of the lead's three places.
    """
    ranked = sorted(
        findings[:LEAD_CANDIDATES], key=lambda f: (len(f.lead.sentences) > 1, -f.lead.score)
    )
    lead = [ranked[0]]
    used = len(ranked[0].lead.sentences)
    for finding in ranked[1:]:
        if used + len(finding.lead.sentences) > LEAD_SENTENCES or len(lead) == LEAD_SENTENCES:
            break
        lead.append(finding)
        used += len(finding.lead.sentences)
    return lead, [f for f in findings if all(f is not chosen for chosen in lead)]


def _themes(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """The findings in groups that share a telling term, each under a short heading named
    after it, best group first; findings that share none go under "Other findings"."""
    left = list(findings)
    groups: list[tuple[str, list[Finding]]] = []
    common = len(findings) * 0.6
    while left and len(groups) < MAX_THEMES:
        counts: Counter[str] = Counter()
        for f in left:
            counts.update(f.lead.terms)
        shared = [
            t
            for t, c in counts.items()
            if c >= MIN_THEME
            and sum(t in f.lead.terms for f in findings) <= common
            and not t.isdigit()
        ]
        if not shared:
            break
        term = min(shared, key=lambda t: (-counts[t], -_best_score(left, t), t))
        members = [f for f in left if term in f.lead.terms]
        groups.append((_heading(term, members), members))
        left = [f for f in left if term not in f.lead.terms]
    if left:
        if groups:
            groups.append((OTHER_THEME, left))
        else:
            groups.append(("", left))
    return groups


def _best_score(findings: list[Finding], term: str) -> float:
    return max((f.lead.score for f in findings if term in f.lead.terms), default=0.0)


def _heading(term: str, members: list[Finding]) -> str:
    """A theme's heading: two words with `term` that several of its findings use ("waggle
    dance"), else `term` as they write it most often; capitalized."""
    pairs: Counter[str] = Counter()  # in how many findings each pair appears
    words: Counter[str] = Counter()
    for f in members:
        seen = surface_words(f.text)
        pairs.update(
            {
                f"{w1} {w2}"
                for (t1, w1), (t2, w2) in itertools.pairwise(seen)
                if t1 and t2 and term in (t1, t2)
            }
        )
        words.update(w for t, w in seen if t == term)
    repeated = [p for p, c in pairs.items() if c >= 2]
    if repeated:
        text = min(repeated, key=lambda p: (-pairs[p], p))
    else:
        text = min(words, key=lambda w: (-words[w], w)) if words else term
    return text[:1].upper() + text[1:]


def by_source(summaries: Sequence[SourceText]) -> str:
    """`## By source`: each summary under its citation, `**[n] Title** — text`, by `n`.

    The combine stage adds it to a model's answer that cites no source, so the reader still
    has cited material. Text is Markdown-escaped and stripped of footnote markers, so no
    `[n]` appears but the source's own.
    """
    lines = ["## By source", ""]
    for source in sorted(summaries, key=lambda s: s.n):
        title = markdown(" ".join((source.title or source.url).split()))
        text = markdown(" ".join(without_footnotes(source.text).split()))
        lines += [f"**[{source.n}] {title}** — {text or 'No summary text.'}", ""]
    return "\n".join(lines).rstrip() + "\n"
