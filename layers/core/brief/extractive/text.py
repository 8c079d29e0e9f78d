"""The offline default model: extractive summaries and a cited report, with no network or key.

It only ever *selects* sentences, so everything it says is something a source said, and the
same input always gives the same output (which makes stored records and tests stable).
Sentences are ranked by overlap with the question's terms, weighted towards terms that are
rare in the text, plus how central their terms are to the text, with a slight preference for
earlier sentences.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from brief.errors import SourceError
from brief.ports import ModelText

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from brief.ports import OnModelRetry, SourceText

__all__ = ["ExtractiveSummarizer", "by_source", "split_sentences"]

MIN_WORDS = 5
MAX_WORDS = 80
# Sentences where more of the non-space characters than this are symbols are not prose.
MAX_SYMBOL_SHARE = 0.3
# Two sentences whose term sets overlap this much say the same thing.
NEAR_DUPLICATE = 0.6
# A summary from another model could be long; combine reads this many sentences of each.
MAX_SENTENCES_PER_SUMMARY = 40

QUESTION_WEIGHT = 3.0
CENTRALITY_WEIGHT = 1.0
POSITION_WEIGHT = 0.15
# Combine: extra score for a finding that several sources state.
SUPPORT_WEIGHT = 0.25


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


NO_SOURCES = "No source could be summarized, so this report has no findings."
NO_FINDINGS = "The summaries contain no sentences that could be listed as findings."

_STOPWORDS = _word_set(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can cannot could did do does doing done down
    during each either even ever every few for from further get gets got had has have
    having he her here hers herself him himself his how however i if in into is it its
    itself just least less let like made make many may me might more most much must my
    myself neither no nor not now of off often on once one only or other others ought our
    ours ourselves out over own per quite rather really same shall she should since so some
    still such than that the their theirs them themselves then there therefore these they
    this those though through thus to too under until up upon us use used very was we well
    were what whatever when whenever where whereas whether which while who whom whose why
    will with within without would yet you your yours yourself yourselves
    """
)

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Terminal punctuation, any closing quotes or brackets, then the space before the next one.
_SENTENCE_END = re.compile(r"([.!?\u2026]+)([\"'\u201d\u2019)\]]*)\s+")
_OPENERS = "\"'\u201c\u2018(["
_LOOKAHEAD = 40  # characters after a full stop read to judge it
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_LETTERS = re.compile(r"[^\W\d_]")
_SYMBOLS = re.compile(r"[^\w\s]|_")
_TERMINATED = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_INITIALISM = re.compile(r"^(?:[a-z]\.)+[a-z]$", re.I)
# Wikipedia-style footnote markers would read as citations of the wrong source in a report.
_FOOTNOTE = re.compile(
    r"\s*\[(?:\d{1,4}(?:\s*[,\u2013-]\s*\d{1,4})*|[a-z]|note \d+|citation needed|"
    r"clarification needed)\]",
    re.I,
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<])")

# Abbreviations that never end a sentence ("Dr. Seeley", "e.g. bees").
_TITLES = _word_set(
    """
    mr mrs ms dr prof rev hon gen col capt lt sgt gov sen rep pres mt e.g i.e cf vs viz
    approx ca
    """
)
# Abbreviations that end a sentence only when a number does not follow ("Fig. 3").
_BEFORE_NUMBERS = _word_set("no nos fig figs vol vols p pp ch sec eq eqs ref refs")
# Abbreviations that may end a sentence ("made in the U.S. The next ..."): they do when the
# next word is one that commonly starts a sentence.
_MAYBE_FINAL = _word_set(
    """
    etc al inc ltd co corp jr sr bros st dept univ
    jan feb mar apr jun jul aug sep sept oct nov dec
    """
)
_SENTENCE_STARTERS = _word_set(
    """
    a after although an and as at because before but by during for from he her here his
    however if in it its many most my no not on once one our she since so some such that
    the their there these they this those though thus to two unlike we what when where
    whereas which while who why with yet you
    """
)


def split_sentences(text: str) -> list[str]:
    """`text` as sentences, whitespace normalized; paragraph breaks always end a sentence.

    A full stop after a known abbreviation ("e.g.", "Dr.", "U.S."), an initial or inside a
    number ("3.5") does not end a sentence, and nor does one followed by a lowercase word.
    """
    sentences: list[str] = []
    for block in _PARAGRAPH_BREAK.split(text):
        paragraph = " ".join(block.split())
        if paragraph:
            sentences.extend(_split_paragraph(paragraph))
    return sentences


def _split_paragraph(paragraph: str) -> list[str]:
    sentences = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        rest = paragraph[match.end() : match.end() + _LOOKAHEAD]
        if not _starts_sentence(rest):
            continue
        if match.group(1) == "." and _is_abbreviation(paragraph[start : match.start()], rest):
            continue
        sentences.append(paragraph[start : match.end(2)])
        start = match.end()
    if start < len(paragraph):
        sentences.append(paragraph[start:])
    return sentences


def _starts_sentence(rest: str) -> bool:
    """Whether text starting with `rest` can start a sentence: a capital, digit or opener."""
    if not rest:
        return False
    first = rest[0]
    if first in _OPENERS and len(rest) > 1:
        first = rest[1]
    return first.isupper() or first.isdigit()


def _is_abbreviation(before: str, rest: str) -> bool:
    """Whether the full stop after `before` belongs to an abbreviation, given what follows."""
    words = before.rsplit(None, 1)
    if not words:
        return False
    token = words[-1].lstrip(_OPENERS)
    lower = token.lower()
    if lower in _TITLES:
        return True
    if lower in _BEFORE_NUMBERS:
        return rest[:1].isdigit()
    if lower in _MAYBE_FINAL or _INITIALISM.match(token) or (len(token) == 1 and token.isalpha()):
        following = _WORD.match(rest.lstrip(_OPENERS))
        return following is None or following.group().lower() not in _SENTENCE_STARTERS
    return False


class ExtractiveSummarizer:
    """Summarizes by choosing sentences; combines by choosing findings across sources.

    Pure CPU and deterministic: no network, no key, and no dependence on hash order.
    """

    local_stages: frozenset[str] = frozenset({"summarize", "combine"})
    """Both outputs take milliseconds to make again: not worth a cache (`worth_caching`)."""

    def __init__(self, *, sentences: int = 5, findings: int = 8) -> None:
        if sentences < 1 or findings < 1:
            raise ValueError("sentences and findings must be at least 1")
        self._sentences = sentences
        self._findings = findings

    @property
    def name(self) -> str:
        """Stored with every summary and report; change it when the output would change."""
        return "extractive-v1"

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        """The `sentences` sentences of `source` that best answer `question`, in text order.

        Raises SourceError when the source has no sentence at all to choose (and never
        retries anything, so `on_retry` is never called).
        """
        candidates = _candidates(split_sentences(source.text))
        if not candidates:
            raise SourceError("the source has no sentences to summarize")
        ranked = _rank(_question_terms(question), candidates)
        chosen: list[_Sentence] = []
        for sentence in ranked:
            if len(chosen) == self._sentences:
                break
            if all(_jaccard(sentence.terms, c.terms) < NEAR_DUPLICATE for c in chosen):
                chosen.append(sentence)
        chosen.sort(key=lambda s: s.position)
        return ModelText(" ".join(s.text for s in chosen))

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
    ) -> ModelText:
        """A Markdown body: `## Key findings` with `[n]` citations, then `## By source`.

        The caller adds the title and the list of sources. Sentence text is Markdown-escaped
        and stripped of footnote markers, so no `[n]` appears that this method did not write.
        """
        if not summaries:
            return ModelText(NO_SOURCES)
        lines = ["## Key findings", ""]
        findings = self._findings_for(question, summaries)
        if findings:
            lines += [f"- {_markdown(f.text)} {f.citations}" for f in findings]
        else:
            lines.append(NO_FINDINGS)
        lines += ["", by_source(summaries)]
        return ModelText("\n".join(lines).rstrip() + "\n")

    def _findings_for(self, question: str, summaries: Sequence[SourceText]) -> list[_Finding]:
        """Up to `findings` findings, merged across sources, taken round-robin by source."""
        sentences: list[_Sentence] = []
        for source in summaries:
            split = split_sentences(_FOOTNOTE.sub("", source.text))
            for sentence in _candidates(split, min_words=3)[:MAX_SENTENCES_PER_SUMMARY]:
                sentence.source = source.n
                sentences.append(sentence)
        if not sentences:
            return []
        q_terms = _question_terms(question)
        ranked = _rank(q_terms, sentences, by_source=True)
        merged: list[_Finding] = []
        for sentence in ranked:
            for finding in merged:
                if _jaccard(sentence.terms, finding.lead.terms) >= NEAR_DUPLICATE:
                    finding.sources.add(sentence.source)
                    break
            else:
                merged.append(_Finding(lead=sentence, sources={sentence.source}))
        for finding in merged:
            finding.score = finding.lead.score + SUPPORT_WEIGHT * (len(finding.sources) - 1)
        relevant = [f for f in merged if f.lead.relevance > 0]
        rest = [f for f in merged if f.lead.relevance == 0]
        chosen = _round_robin(relevant, self._findings)
        chosen += _round_robin(rest, self._findings - len(chosen))
        return chosen


def by_source(summaries: Sequence[SourceText]) -> str:
    """`## By source`: each summary under its citation, `**[n] Title** — text`, by `n`.

    The combine stage adds it to a model's answer that cites no source, so the reader still
    has cited material. Text is Markdown-escaped and stripped of footnote markers, so no
    `[n]` appears but the source's own.
    """
    lines = ["## By source", ""]
    for source in sorted(summaries, key=lambda s: s.n):
        title = _markdown(" ".join((source.title or source.url).split()))
        text = _markdown(" ".join(_FOOTNOTE.sub("", source.text).split()))
        lines += [f"**[{source.n}] {title}** — {text or 'No summary text.'}", ""]
    return "\n".join(lines).rstrip() + "\n"


@dataclass(slots=True)
class _Sentence:
    """A candidate sentence with its terms and, once ranked, its score."""

    text: str
    position: int
    terms: frozenset[str]
    tokens: list[str]
    source: int = 0
    relevance: float = 0.0
    score: float = 0.0


@dataclass(slots=True)
class _Finding:
    """A sentence chosen for the report and every source that says the same."""

    lead: _Sentence
    sources: set[int]
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.lead.text

    @property
    def citations(self) -> str:
        return "".join(f"[{n}]" for n in sorted(self.sources))


def _candidates(sentences: list[str], *, min_words: int = MIN_WORDS) -> list[_Sentence]:
    """Sentences worth ranking: whole sentences of a sensible length, made of words.

    Headings and list fragments (no closing punctuation) are used only when a text has
    nothing else.
    """
    usable: list[tuple[str, bool]] = []
    for text in sentences:
        words = text.count(" ") + 1
        if not min_words <= words <= MAX_WORDS:
            continue
        if len(_SYMBOLS.findall(text)) > MAX_SYMBOL_SHARE * (len(text) - words + 1):
            continue
        usable.append((text, bool(_TERMINATED.search(text))))
    if any(terminated for _, terminated in usable):
        usable = [u for u in usable if u[1]]
    if not usable:
        usable = [
            (text, False)
            for text in sentences
            if text.count(" ") < MAX_WORDS and _LETTERS.search(text)
        ]
    result = []
    for position, (text, _) in enumerate(usable):
        tokens = _terms(text)
        result.append(_Sentence(text, position, frozenset(tokens), tokens))
    return result


def _rank(
    q_terms: frozenset[str], sentences: list[_Sentence], *, by_source: bool = False
) -> list[_Sentence]:
    """`sentences` best first; scores are stored on each sentence.

    Relevance is the share of the question's weight a sentence covers, each question term
    weighted by how rare it is among the sentences (a term every sentence has tells nothing).
    Centrality is the mean of the sentence's term frequencies, log-scaled to [0, 1]; with
    `by_source` it is instead the share of sources that use each term (agreement).
    """
    count = len(sentences)
    df: Counter[str] = Counter()
    for sentence in sentences:
        df.update(sentence.terms)
    if by_source:
        sources_per_term: dict[str, set[int]] = {}
        for sentence in sentences:
            for term in sentence.terms:
                sources_per_term.setdefault(term, set()).add(sentence.source)
        n_sources = len({s.source for s in sentences})
        centrality = {t: len(s) / n_sources for t, s in sources_per_term.items()}
    else:
        tf: Counter[str] = Counter()
        for sentence in sentences:
            tf.update(sentence.tokens)
        top = math.log1p(max(tf.values(), default=1))
        centrality = {t: math.log1p(c) / top for t, c in tf.items()}
    weights = {t: math.log1p(count / df[t]) for t in q_terms if df[t]}
    total = math.fsum(weights.values())
    positions = Counter(s.source for s in sentences)
    for sentence in sentences:
        matched = sentence.terms | _joined_terms(sentence.tokens, weights)
        covered = math.fsum(w for t, w in weights.items() if t in matched)
        sentence.relevance = covered / total if total else 0.0
        central = (
            math.fsum(centrality[t] for t in sentence.terms) / len(sentence.terms)
            if sentence.terms
            else 0.0
        )
        span = positions[sentence.source]
        early = 1.0 - sentence.position / span if span else 0.0
        sentence.score = (
            QUESTION_WEIGHT * sentence.relevance
            + CENTRALITY_WEIGHT * central
            + POSITION_WEIGHT * early
        )
    return sorted(sentences, key=lambda s: (-s.score, s.source, s.position))


def _round_robin(findings: list[_Finding], limit: int) -> list[_Finding]:
    """At most `limit` findings, best first, but no source's second before every source's first.

    A finding belongs to the source of its lead sentence; each round takes the best
    remaining finding of every source, in score order.
    """
    if limit <= 0:
        return []
    queues: dict[int, list[_Finding]] = {}
    for finding in sorted(findings, key=lambda f: (-f.score, f.lead.source, f.lead.position)):
        queues.setdefault(finding.lead.source, []).append(finding)
    chosen: list[_Finding] = []
    depth = 0
    while len(chosen) < limit:
        heads = [queue[depth] for queue in queues.values() if depth < len(queue)]
        if not heads:
            break
        heads.sort(key=lambda f: (-f.score, f.lead.source, f.lead.position))
        chosen += heads[: limit - len(chosen)]
        depth += 1
    return chosen


def _question_terms(question: str) -> frozenset[str]:
    """The question's terms, plus each adjacent pair written as one word ("honey bee")."""
    tokens = _terms(question)
    return frozenset(tokens) | frozenset(_stem(a + b) for a, b in _pairs(question))


def _joined_terms(tokens: list[str], weights: dict[str, float]) -> set[str]:
    """Question terms that the sentence writes as two words ("honey bees" for "honeybees")."""
    if not weights or len(tokens) < 2:
        return set()
    return {j for a, b in itertools.pairwise(tokens) if (j := _stem(a + b)) in weights}


def _pairs(text: str) -> Iterable[tuple[str, str]]:
    words = [w for w in (_normal_word(m.group()) for m in _WORD.finditer(text)) if w]
    return itertools.pairwise(words)


def _terms(text: str) -> list[str]:
    """Content-word stems of `text`, in order, with repeats."""
    terms = []
    for word in _WORD.findall(text.lower().replace("\u2019", "'")):
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) > 1 and word not in _STOPWORDS:
            terms.append(_stem(word))
    return terms


def _normal_word(word: str) -> str | None:
    """The lowercased word without a possessive; None for stopwords and single letters."""
    word = word.lower().replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) < 2 or word in _STOPWORDS:
        return None
    return word


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    """A light suffix-stripping stem: enough that "decides", "deciding", "decided" meet."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ied") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) > 5:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4:
        word = _undouble(word[:-2])
    elif word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    """ "running" -> "runn" -> "run", but "falling" keeps its "ll"."""
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiouslz":
        return word[:-1]
    return word


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _markdown(text: str) -> str:
    """Escape what Markdown would read as emphasis, code, links or raw HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
