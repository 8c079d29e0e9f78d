"""How good one report is, measured against its case (`bench.eval.cases`).

- **Nugget recall**: the share of the case's nuggets some sentence of the report states.
- **Citation support**: each sentence that carries `[n]` (or runs up to one, in the same
  paragraph) is checked against source n: supported when at least `SUPPORTED` of its content
  words (stemmed) occur within two consecutive sentences of that source. A citation of a
  source the report does not list is *invented*; one whose source does not support the
  sentence is *unsupported*.
- **Redundancy**: the share of findings (cited claims) that repeat an earlier one: their
  stemmed words match it at `REPEATS` or more by rapidfuzz's token-set ratio.
- **Restatement**: the share of findings that state only nuggets an earlier finding stated: a
  repeat in other words, which redundancy's word match misses. Nuggets are coarse (one can
  cover two related facts), so it counts some findings that add a detail.
- **Lead**: how many sentences of the lead (the answer before its first heading) state a
  nugget: whether the report opens with the answer.
- **Dangling sentences**: sentences that open by pointing back ("This", "They", "For this
  reason", ...) with nothing of their own source before them: the first sentence of a
  paragraph or bullet, or a sentence quoted from a source after one its source did not have
  before it.
- **Length**: words in the answer (the report without its title and source lists).

The answer is the report's Markdown between its title and `## Sources`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz import fuzz

from bench.eval.cases import Case, stems
from brief.extractive import split_sentences

SUPPORTED = 0.6
REPEATS = 90.0

_CITES = re.compile(r"((?:\s*\[\d+\])+)")
_NUMBER = re.compile(r"\[(\d+)\]")
_LISTED = re.compile(r"^- ((?:\[\d+\])+) \[.*\]\((.*)\)\s*$", re.MULTILINE)
_POINTS_BACK = re.compile(
    r"^[\"'\u201c(]*(?:this|these|those|that|they|them|their|it|its|such|he|she|his|her"
    r"|here|there(?:fore|by)|thus|hence|then|however|instead|meanwhile|likewise|similarly"
    r"|for (?:this|that) reason|as a result|because of (?:this|that)|in other words|in turn"
    r"|the (?:latter|former|same))\b",
    re.IGNORECASE,
)
_STOP = frozenset(
    re.findall(
        r"\S+",
        """a an the of to in on at by for and or but is are was were be been being it its this
        that these those as with from into than then so not no do doe did has have had can
        could will would may might must should which who whom what when where how why all any
        some more most much mani such onli also veri there their they them he she his her we
        our you your i""",
    )
)


@dataclass
class Claim:
    """Sentences of the answer and the sources they cite (none: uncited)."""

    sentences: list[str]
    cites: list[int]
    first_in_block: bool


@dataclass
class Score:
    """One report's figures against its case."""

    case: str
    nuggets: int
    found: list[str]
    recall: float
    cited_sentences: int
    unsupported: list[str] = field(default_factory=list)
    invented: list[int] = field(default_factory=list)
    uncited_sentences: int = 0
    findings: int = 0
    redundant: list[str] = field(default_factory=list)
    redundancy: float = 0.0
    restated: list[str] = field(default_factory=list)
    restatement: float = 0.0
    lead_sentences: int = 0
    lead_stating: int = 0
    dangling: list[str] = field(default_factory=list)
    words: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def answer_of(markdown: str) -> str:
    """The report's answer: its Markdown between the title and `## Sources`."""
    body = markdown.split("\n## Sources\n", 1)[0]
    lines = [ln for ln in body.splitlines() if not ln.startswith("# ")]
    return "\n".join(lines)


def listed_sources(markdown: str) -> dict[int, str]:
    """The sources the report lists, `[n]` to URL (one page reached two ways is one line
    under both numbers: `- [2][5] [Title](url)`)."""
    tail = markdown.split("\n## Sources\n", 1)[1] if "\n## Sources\n" in markdown else ""
    tail = tail.split("\n## Sources not used", 1)[0]
    return {int(n): url for ns, url in _LISTED.findall(tail) for n in _NUMBER.findall(ns)}


def claims(answer: str) -> list[Claim]:
    """The answer's paragraphs and bullets, cut after each run of citations."""
    found: list[Claim] = []
    for block in re.split(r"\n\s*\n|\n(?=- )", answer):
        text = block.strip()
        if not text or text.startswith(("#", ">")):
            continue
        text = text.removeprefix("- ")
        parts = _CITES.split(text)
        first = True
        for i in range(0, len(parts), 2):
            sentences = [s for s in split_sentences(parts[i].strip()) if _words(s)]
            cites = [int(n) for n in _NUMBER.findall(parts[i + 1])] if i + 1 < len(parts) else []
            if sentences:
                found.append(Claim(sentences, cites, first))
                first = False
    return found


def score(case: Case, markdown: str, texts_by_n: dict[int, str]) -> Score:
    """`markdown` (a report) against `case`; `texts_by_n` is each listed source's text by
    its number in the report."""
    answer = answer_of(markdown)
    listed = listed_sources(markdown)
    found = [n.id for n in case.nuggets if n.found_in(_plain(answer))]
    result = Score(
        case=case.slug,
        nuggets=len(case.nuggets),
        found=found,
        recall=len(found) / len(case.nuggets) if case.nuggets else 1.0,
        cited_sentences=0,
        words=len(_plain(answer).split()),
    )
    windows = {n: _windows(t) for n, t in texts_by_n.items()}
    sentences_of = {n: split_sentences(t) for n, t in texts_by_n.items()}
    seen: list[tuple[str, str]] = []
    said: set[str] = set()
    parts = claims(answer)
    for claim in parts:
        if not claim.cites:
            result.uncited_sentences += len(claim.sentences)
            continue
        result.cited_sentences += len(claim.sentences)
        for n in claim.cites:
            if n not in listed or n not in windows:
                result.invented.append(n)
                continue
            for sentence in claim.sentences:
                if not supported(sentence, windows[n]):
                    result.unsupported.append(f"[{n}] {sentence}")
        text = " ".join(claim.sentences)
        key = " ".join(sorted(set(stems(text)) - _STOP))
        repeat = next((t for t, k in seen if fuzz.token_set_ratio(key, k) >= REPEATS), None)
        if repeat is not None:
            result.redundant.append(f"{text} ~ {repeat}")
        seen.append((text, key))
        states = {n.id for n in case.nuggets if n.found_in(text)}
        if states and states <= said:
            result.restated.append(f"{text} ({', '.join(sorted(states))})")
        said |= states
    result.findings = sum(1 for c in parts if c.cites)
    result.redundancy = len(result.redundant) / result.findings if result.findings else 0.0
    result.restatement = len(result.restated) / result.findings if result.findings else 0.0
    result.dangling = _dangling(parts, sentences_of)
    lead = [
        s
        for s in split_sentences(_plain(re.split(r"^#", answer, maxsplit=1, flags=re.M)[0]))
        if _words(s)
    ]
    result.lead_sentences = len(lead)
    result.lead_stating = sum(1 for s in lead if any(n.in_sentence(s) for n in case.nuggets))
    return result


def supported(sentence: str, windows: list[frozenset[str]]) -> bool:
    """Whether at least `SUPPORTED` of the sentence's content words occur in one window."""
    words = frozenset(stems(sentence)) - _STOP
    if not words:
        return True
    best = max((len(words & w) for w in windows), default=0)
    return best / len(words) >= SUPPORTED


def _windows(text: str) -> list[frozenset[str]]:
    sentences = [frozenset(stems(s)) - _STOP for s in split_sentences(text)]
    pairs = [a | b for a, b in itertools.pairwise(sentences)]
    return sentences + pairs


def _dangling(parts: list[Claim], sentences_of: dict[int, list[str]]) -> list[str]:
    out = []
    before: str | None = None
    for claim in parts:
        for i, sentence in enumerate(claim.sentences):
            if _POINTS_BACK.match(sentence):
                opens_block = claim.first_in_block and i == 0
                if opens_block or not _follows_in_source(sentence, before, claim, sentences_of):
                    out.append(sentence)
            before = sentence
    return out


def _follows_in_source(
    sentence: str, before: str | None, claim: Claim, sentences_of: dict[int, list[str]]
) -> bool:
    """True unless `sentence` is quoted from a cited source whose sentence before it is not
    `before` (text the report wrote itself is given the benefit of the doubt)."""
    for n in claim.cites:
        source = sentences_of.get(n, [])
        for k, s in enumerate(source):
            if _same(s, sentence):
                return k > 0 and before is not None and _same(source[k - 1], before)
    return True


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _words(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _plain(markdown: str) -> str:
    """Markdown without its escapes and citation markers, as prose to match nuggets in."""
    text = _CITES.sub("", markdown)
    text = re.sub(r"\\([\\`*_\[\]<])", r"\1", text)
    return re.sub(r"^\s*(?:#+|-)\s*", "", text, flags=re.MULTILINE)
