"""How much an excerpt bears on the question: BM25 (`bm25s`) for the question and for the
topic's own terms, and a choice that stays diverse (maximal marginal relevance).

BM25 rewards an excerpt for each question term it has, more for terms that few excerpts have,
and less for long excerpts. Questions seldom use the words of their answers ("Why do leaves
change colour?" is answered by "... chlorophyll breaks down, unmasking the carotenoids"), so
the topic's own vocabulary (the terms most sources use, a topic signature) is a second query
at a lower weight, and a question that asks for a quantity favours excerpts that state one.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from brief.extractive.text import Excerpt, jaccard, joined_terms

# The topic's own terms: this many, at this weight beside the question's.
TOPIC_TERMS = 12
TOPIC_WEIGHT = 1.2
# A question asking for a quantity: an excerpt that states one gets this much more relevance.
QUANTITY_BONUS = 0.25

_QUANTITY_QUESTION = re.compile(
    r"\bhow\s+(?:tall|high|long|many|much|far|old|big|large|deep|fast|heavy|often|hot|cold)\b"
    r"|\bwhat\s+(?:is|was|are)\s+the\s+(?:height|length|number|size|age|cost|price|speed|"
    r"weight|depth|distance|lifespan|population|temperature|average|rate)\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"\d")
# A question asking for causes: an excerpt that gives one gets this much more relevance.
CAUSE_BONUS = 0.2
_CAUSE_QUESTION = re.compile(
    r"^\W*(?:why\b|how\s+come\b|what\s+(?:causes|caused|makes|made|drives|drove|leads?\s+to|led\s+to|triggers?)\b)",
    re.IGNORECASE,
)
_CAUSE = re.compile(
    r"\b(?:because|caus(?:e|es|ed|ing)|due\s+to|reasons?|triggers?|triggered|drives?|driven|"
    r"leads?\s+to|led\s+to|results?\s+(?:in|from)|so\s+that|which\s+is\s+why|makes?|made)\b",
    re.IGNORECASE,
)


def score_relevance(question: str, q_terms: frozenset[str], found: Sequence[Excerpt]) -> None:
    """Set each excerpt's `relevance`: its BM25 score for the question plus, at a lower
    weight, for the topic's own terms (`topic_terms`), scaled so the best excerpt has 1."""
    if not found:
        return
    bm25s = _bm25s()

    retriever = bm25s.BM25()
    retriever.index([p.tokens or ["\x00"] for p in found], show_progress=False)
    # "honey bees" in an excerpt answers "honeybees" in the question.
    extra = [len(joined_terms(p.tokens, q_terms)) for p in found]
    query = sorted(q_terms)
    base = [float(s) for s in retriever.get_scores(query)] if query else [0.0] * len(found)
    base = [b + 0.5 * e for b, e in zip(base, extra, strict=True)]
    topic = topic_terms(found, q_terms)
    more = [float(s) for s in retriever.get_scores(topic)] if topic else [0.0] * len(found)
    top, top_more = max(base) or 1.0, max(more) or 1.0
    quantity = _QUANTITY_QUESTION.search(question) is not None
    cause = _CAUSE_QUESTION.search(question) is not None
    scores = []
    for p, b, m in zip(found, base, more, strict=True):
        s = b / top + TOPIC_WEIGHT * m / top_more
        if quantity and b > 0 and _QUANTITY.search(p.text):
            s += QUANTITY_BONUS
        if cause and s > 0 and _CAUSE.search(p.text):
            s += CAUSE_BONUS
        scores.append(s)
    best = max(scores) or 1.0
    for p, s in zip(found, scores, strict=True):
        p.relevance = s / best


def _bm25s() -> Any:
    """`bm25s`, imported on first use (numpy with it: only where the offline summarizer runs),
    its per-index debug lines kept out of the job's logs."""
    import bm25s  # type: ignore[import-untyped]

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def topic_terms(found: Sequence[Excerpt], q_terms: frozenset[str]) -> list[str]:
    """The topic's own words beyond the question's: across several sources, the terms most
    of them use; within one text, the terms it repeats most (a topic signature)."""
    sources = {p.source for p in found}
    tf: Counter[str] = Counter()
    spread: dict[str, set[int]] = {}
    for p in found:
        tf.update(p.tokens)
        for t in p.terms:
            spread.setdefault(t, set()).add(p.source)
    if len(sources) > 1:
        least = max(2, math.ceil(len(sources) / 2))
        wanted = {t: (len(spread[t]), tf[t]) for t in tf if len(spread[t]) >= least}
    else:
        wanted = {t: (tf[t], 0) for t in tf if tf[t] >= 3}
    ranked = sorted(
        (t for t in wanted if t not in q_terms and not t.isdigit()),
        key=lambda t: (-wanted[t][0], -wanted[t][1], t),
    )
    return ranked[:TOPIC_TERMS]


def diverse(candidates: Sequence[Excerpt], limit: int, *, penalty: float = 0.6) -> list[Excerpt]:
    """Up to `limit` excerpts, best `score` first, each time taking the one whose score least
    repeats what is taken already (maximal marginal relevance; ties by source, then place)."""
    pool = sorted(candidates, key=lambda p: (-p.score, p.source, p.position))
    chosen: list[Excerpt] = []
    while pool and len(chosen) < limit:
        best = max(
            pool,
            key=lambda p: (
                p.score - penalty * max((jaccard(p.terms, c.terms) for c in chosen), default=0.0),
                -p.source,
                -p.position,
            ),
        )
        pool.remove(best)
        chosen.append(best)
    return chosen
