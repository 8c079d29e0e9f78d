"""Text as the offline summarizer reads it: sentences, their terms, and the sentences that
cannot stand alone.

A sentence that opens by pointing back ("This is why ...", "They ...", "For this reason
...") means nothing without the sentence before it, so it is only ever chosen as a `Excerpt`
together with that sentence. Terms are Snowball stems of content words, so "decides",
"deciding" and "decided" meet.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer  # type: ignore[import-not-found]  # PyStemmer: Snowball in C

MIN_WORDS = 5
MAX_WORDS = 80
# Sentences where more of the non-space characters than this are symbols are not prose.
MAX_SYMBOL_SHARE = 0.3
# An excerpt holds a sentence and at most this many sentences it leans on before it.
MAX_LEAN = 2


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


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


# Openings that point back to the sentence before: what "this", "they" or "for this reason"
# refer to is there, not here.
_LEANS_BACK = re.compile(
    r"""^[\"'\u201c\u2018(]*(?:
        (?:this|these|that|those|such|they|them|their|theirs|it|its|he|she|his|her|both)\b
      | (?:here|then|thus|hence|therefore|consequently|however|meanwhile|instead|otherwise
        |likewise|similarly|moreover|furthermore|besides|nevertheless|nonetheless|still
        |also|again|later|afterwards|finally|so)\b
      | (?:for|because\ of|as\ a\ result\ of|despite|in\ spite\ of)\ (?:this|that|these|those|it)\b
      | as\ a\ result\b | in\ other\ words\b | in\ turn\b | in\ (?:this|that)\ case\b
      | at\ (?:this|that)\ (?:point|stage|time)\b | the\ (?:latter|former|same|other)\b
      | (?:on\ the\ other\ hand|by\ contrast|in\ contrast|even\ so|after\ that)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)


# "Together these facts ...", "All of this ...", "Manufacturers can therefore ...": a pointer
# back among a sentence's first few words.
_POINTER_NEAR_START = re.compile(
    r"^(?:\S+\s+){0,3}(?:these|those|this|such)\s+(?!year|week|month|day|century|spring|summer"
    r"|autumn|fall|winter|morning|evening|time|is|was|means)"
    r"|^(?:\S+\s+){0,5}(?:therefore|thus|hence|consequently|here)\b"
    # "... the bees in that cloud ...": a pointer after a preposition, early on.
    r"|^(?:\S+\s+){0,7}(?:in|of|from|at|on|to|by|with|for|into|about)\s+(?:that|this|these|those)"
    r"\s+(?!year|week|month|day|century|time|way|is|was)\w",
    re.IGNORECASE,
)


def leans_back(sentence: str) -> bool:
    """Whether `sentence` depends on the one before it for its meaning."""
    return _LEANS_BACK.match(sentence) is not None or (
        _POINTER_NEAR_START.match(sentence) is not None
    )


@dataclass(slots=True)
class Excerpt:
    """A sentence worth choosing, with the sentences before it that it leans on: what a
    summary or a report quotes as one piece, so nothing it says points at something left out.
    """

    sentences: tuple[str, ...]
    position: int  # the sentence's place among its text's sentences
    source: int = 0
    tokens: list[str] = field(default_factory=list)
    terms: frozenset[str] = frozenset()
    relevance: float = 0.0
    score: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def span(self) -> range:
        """The places of its sentences in its text."""
        return range(self.position - len(self.sentences) + 1, self.position + 1)


def excerpts(sentences: list[str], *, min_words: int = MIN_WORDS, source: int = 0) -> list[Excerpt]:
    """Every sentence worth ranking, each as an excerpt with the sentences it leans on.

    A whole sentence of a sensible length, made of words, qualifies; headings and list
    fragments (no closing punctuation) only when a text has nothing else. A sentence that
    leans on one that does not qualify (a heading, a fragment), or on more than `MAX_LEAN`
    in a row, is left out: it cannot be quoted so that it makes sense.
    """
    usable = [_usable(s, min_words) for s in sentences]
    if not any(u == "whole" for u in usable):
        return [
            _passage((text,), i, source)
            for i, text in enumerate(sentences)
            if usable[i] == "fragment" or (text.count(" ") < MAX_WORDS and _LETTERS.search(text))
        ]
    found = []
    for i in range(len(sentences)):
        if usable[i] != "whole":
            continue
        first = i
        while leans_back(sentences[first]) and i - first < MAX_LEAN and first > 0:
            if usable[first - 1] != "whole":
                break
            first -= 1
        if leans_back(sentences[first]):
            continue
        found.append(_passage(tuple(sentences[first : i + 1]), i, source))
    return found


_CLOSERS = "\"'\u201d\u2019)] "


def _usable(text: str, min_words: int) -> str | None:
    """ "whole" (a sentence to choose), "fragment" (prose without closing punctuation), or
    None (too short, too long, or mostly symbols)."""
    words = text.count(" ") + 1
    if not min_words <= words <= MAX_WORDS:
        return None
    if len(_SYMBOLS.findall(text)) > MAX_SYMBOL_SHARE * (len(text) - words + 1):
        return None
    if text.rstrip(_CLOSERS).endswith("?"):
        return None  # a question states nothing
    return "whole" if _TERMINATED.search(text) else "fragment"


def _passage(sentences: tuple[str, ...], position: int, source: int) -> Excerpt:
    tokens = terms(" ".join(sentences))
    return Excerpt(sentences, position, source, tokens, frozenset(tokens))


def without_footnotes(text: str) -> str:
    """`text` without Wikipedia-style footnote markers, which would read as citations."""
    return _FOOTNOTE.sub("", text)


def question_terms(question: str) -> frozenset[str]:
    """The question's terms, plus each adjacent pair written as one word ("honey bee")."""
    words = [w for w in (_normal_word(m.group()) for m in _WORD.finditer(question)) if w]
    joined = {stem(a + b) for a, b in itertools.pairwise(words)}
    return frozenset(terms(question)) | frozenset(joined)


def joined_terms(tokens: list[str], wanted: frozenset[str]) -> set[str]:
    """The `wanted` terms that a text writes as two words ("honey bees" for "honeybees")."""
    if not wanted or len(tokens) < 2:
        return set()
    return {j for a, b in itertools.pairwise(tokens) if (j := stem(a + b)) in wanted}


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def terms(text: str) -> list[str]:
    """Content-word stems of `text`, in order, with repeats ("8,849" is one term, 8849)."""
    found = []
    for word in _WORD.findall(_THOUSANDS.sub("", text.lower().replace("\u2019", "'"))):
        word = _normal_word(word)
        if word:
            found.append(stem(word))
    return found


def surface_words(text: str) -> list[tuple[str, str]]:
    """Each word of `text` as written (lowercased) with its term, stopwords as ("", word)."""
    pairs = []
    for match in _WORD.finditer(text):
        word = match.group()
        normal = _normal_word(word)
        pairs.append((stem(normal), word.lower()) if normal else ("", word.lower()))
    return pairs


def _normal_word(word: str) -> str | None:
    """The lowercased word without a possessive; None for stopwords and single letters."""
    word = word.lower().replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) < 2 or word in _STOPWORDS:
        return None
    return word


# A stemmer keeps its word in progress on itself: one per thread, or two threads stemming at
# once could corrupt each other's (the pure-Python snowballstemmer raised IndexError so).
_STEMMERS = threading.local()


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The Snowball (English) stem of a lowercased word."""
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:
        stemmer = _STEMMERS.english = Stemmer.Stemmer("english")
    return str(stemmer.stemWord(word))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """How much two sets of terms overlap, from 0 (nothing shared) to 1 (the same)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def markdown(text: str) -> str:
    """Escape what Markdown would read as emphasis, code, links or raw HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
