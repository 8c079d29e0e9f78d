"""Deep research: a bounded tree of follow-up questions, one level at a time.

A deep job (`depth` > 1) runs its first level as any job does: its own sources, retrieved at
once, summarized, fanned in. The combine of a level that may grow the tree asks `breadth`
follow-up questions of each of the level's questions (`follow_ups`), stores them as the next
level's plan (`LevelPlan`, written once), and queues that level's research: a web search per
question, every one at once, its results read and summarized like any source and fanned in
with the same exactly-once claim, per level. The last level's combine writes one report over
every source of every level. The tree grows level by level, so a job takes about as long as
its depth, not its size.

The budget is checked before each level: at most `max_sources` documents in all, at most
`max_cost_usd` of model cost, no level started past `max_seconds`. When it runs out, the
report is written from what was found and says what was cut and why.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from brief.extractive.text import question_terms, surface_words
from brief.models import (
    MAX_DOCUMENTS,
    FollowUp,
    JobRecord,
    LevelPlan,
    Retrieval,
    SearchSource,
    SourceSpec,
    TreeNode,
    Usage,
    slots,
)
from brief.urls import same_page

RESULTS_PER_QUESTION = 3
"""How many search results each follow-up question reads."""
MAX_QUERY_CHARS = 400  # a search source's longest query


@dataclass(frozen=True)
class Node:
    """A question of the tree and the texts (summaries) that answered it."""

    node: str
    question: str
    texts: Sequence[str]


def level_sources(job: JobRecord, plans: Sequence[LevelPlan]) -> list[SourceSpec]:
    """The job's sources, then each planned level's searches, in order: the gatherer's plan
    of this list gives every level's sources indexes after the levels before."""
    searches: list[SourceSpec] = [
        SearchSource(search=f.query, limit=f.limit) for p in plans for f in p.follow_ups
    ]
    return [*job.request.sources, *searches]


def first_index(job: JobRecord, plans: Sequence[LevelPlan], level: int) -> int:
    """The first source index of `level` (the levels before it use those below)."""
    if level <= 1:
        return 0
    before = [p for p in plans if p.level < level]
    return sum(slots(s) for s in level_sources(job, before))


def follow_up_slots(
    job: JobRecord, plans: Sequence[LevelPlan], level: int
) -> list[tuple[FollowUp, range]]:
    """Each follow-up question of `level` (2 or more) with the source indexes its search
    fills (none for level 1, whose sources are the request's)."""
    plan = next((p for p in plans if p.level == level), None)
    first = first_index(job, plans, level)
    found = []
    for f in plan.follow_ups if plan else ():
        found.append((f, range(first, first + f.limit)))
        first += f.limit
    return found


def nodes_of(
    job: JobRecord, plans: Sequence[LevelPlan], level: int, texts: dict[int, str]
) -> list[Node]:
    """The questions of `level`, each with the summaries (`texts`, by source index) of the
    sources that answered it."""
    if level == 1:
        return [Node("1", job.request.question, [texts[i] for i in sorted(texts)])]
    return [
        Node(f.node, f.question, [texts[i] for i in slots if i in texts])
        for f, slots in follow_up_slots(job, plans, level)
    ]


def tree(
    job: JobRecord, plans: Sequence[LevelPlan], retrievals: Sequence[Retrieval]
) -> list[TreeNode]:
    """The job's questions, level by level, with the sources (usable ones, by index) that
    answered each: a page two searches of a level found is read once, and answers both."""
    outcomes = {s.index: s for r in retrievals for s in r.sources}
    read = {same_page(s.url): s.index for s in outcomes.values() if s.usable}

    def answered_in(slots: range) -> list[int]:
        found: list[int] = []
        for i in slots:
            outcome = outcomes.get(i)
            if outcome is None:
                continue
            index = i if outcome.usable else read.get(same_page(outcome.url))
            if index is not None and index not in found:
                found.append(index)
        return found

    first_level = [s.index for r in retrievals if r.level == 1 for s in r.usable]
    found = [
        TreeNode(node="1", parent=None, question=job.request.question, level=1, sources=first_level)
    ]
    for plan in sorted(plans, key=lambda p: p.level):
        found += [
            TreeNode(
                node=f.node,
                parent=f.parent,
                question=f.question,
                level=plan.level,
                sources=answered_in(slots),
            )
            for f, slots in follow_up_slots(job, plans, plan.level)
        ]
    return found


def budget_cut(job: JobRecord, now: datetime, spent_usd: float, documents: int) -> str | None:
    """Why the tree must not grow another level (None: its budget allows it)."""
    request = job.request
    if request.max_seconds is not None:
        elapsed = (now - job.created_at).total_seconds()
        if elapsed >= request.max_seconds:
            return f"its time ran out ({elapsed:.0f} s; max_seconds is {request.max_seconds})"
    if request.max_cost_usd is not None and spent_usd >= request.max_cost_usd:
        return f"its model cost reached ${spent_usd:.4f} (max_cost_usd is ${request.max_cost_usd})"
    limit = request.max_sources or MAX_DOCUMENTS
    if documents >= limit:
        return f"it has read {documents} documents (max_sources is {limit})"
    return None


def stops_at(
    job: JobRecord, level: int, *, at: datetime, spent_usd: float, documents: int
) -> tuple[bool, str | None]:
    """Whether the tree stops at `level`, and why, when its budget stops it (None when the
    level is as deep as asked, or the tree may grow)."""
    if level >= job.request.depth:
        return True, None
    cut = budget_cut(job, at, spent_usd, documents)
    return cut is not None, cut


def next_plan(
    job: JobRecord,
    level: int,
    nodes: Sequence[Node],
    *,
    at: datetime,
    spent_usd: float,
    documents: int,
    proposed: Mapping[str, Sequence[str]] | None = None,
    usage: Usage | None = None,
) -> LevelPlan | str | None:
    """The plan of level `level + 1` (its follow-up questions, within the budget); None when
    `level` is as deep as asked; else why the tree stops short of it. `proposed` are a
    model's questions by node (a node without them gets offline ones); `usage` what asking
    cost."""
    stop, cut = stops_at(job, level, at=at, spent_usd=spent_usd, documents=documents)
    if stop:
        return cut
    proposed = proposed or {}
    room = (job.request.max_sources or MAX_DOCUMENTS) - documents
    breadth = job.request.breadth
    follow_ups: list[FollowUp] = []
    asked: set[str] = set()
    for node in nodes:
        offered = [(q, q[:MAX_QUERY_CHARS]) for q in proposed.get(node.node, ())][:breadth]
        for question, query in offered or follow_ups_of(job.request.question, node, breadth, asked):
            if room <= 0:
                break
            limit = min(RESULTS_PER_QUESTION, room)
            room -= limit
            number = len(follow_ups) + 1
            follow_ups.append(
                FollowUp(
                    node=f"{level + 1}.{number}",
                    parent=node.node,
                    question=question,
                    query=query,
                    limit=limit,
                )
            )
    if not follow_ups:
        return "its findings raised no follow-up question"
    wanted = len(nodes) * breadth
    short = None
    if len(follow_ups) < wanted:
        short = f"{len(follow_ups)} of {wanted} follow-up questions: " + (
            "the document limit (max_sources) was reached"
            if room <= 0
            else "the findings raised no more"
        )
    cost = usage or Usage()
    return LevelPlan(
        job_id=job.job_id,
        level=level + 1,
        follow_ups=follow_ups,
        spent_usd=spent_usd + cost.cost_usd,
        usage=cost,
        cut=short,
        at=at,
    )


def follow_ups_of(root: str, node: Node, count: int, asked: set[str]) -> list[tuple[str, str]]:
    """Up to `count` follow-up questions (and their search queries) that `node`'s findings
    raise, offline: the phrases its summaries use most that neither the root question nor a
    question already asked (`asked`, updated) covers."""
    known = question_terms(root) | question_terms(node.question)
    topic = " ".join(_topic_words(root))
    scored: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for text in node.texts:
        seen_here: set[str] = set()
        for phrase, surface in _phrases(text):
            if any(t in known for t in phrase.split()):
                continue
            weight = 4 if " " in phrase else 1  # a two-word phrase ("waggle dance") says more
            scored[phrase] += weight * (2 if phrase not in seen_here else 1)
            seen_here.add(phrase)
            shown.setdefault(phrase, surface)
    chosen: list[tuple[str, str]] = []
    used: set[str] = set(itertools.chain.from_iterable(a.split() for a in asked))
    for phrase, _ in scored.most_common():
        if len(chosen) == count:
            break
        words = set(phrase.split())
        if words & used:
            continue
        used |= words
        asked.add(phrase)
        surface = shown[phrase]
        chosen.append((f"What is known about {surface}?", f"{surface} {topic}".strip()))
    return chosen


def _phrases(text: str) -> list[tuple[str, str]]:
    """Runs of one or two content words in `text`: (their terms, as written)."""
    found: list[tuple[str, str]] = []
    run: list[tuple[str, str]] = []
    for term, word in [*surface_words(text), ("", "")]:
        if term and word.isalpha():
            run.append((term, word))
            continue
        for size in (1, 2):
            for i in range(len(run) - size + 1):
                part = run[i : i + size]
                found.append((" ".join(t for t, _ in part), " ".join(w for _, w in part)))
        run = []
    return found


def _topic_words(question: str, most: int = 4) -> list[str]:
    """The question's content words as written, at most `most` (a follow-up's search keeps
    to the job's topic)."""
    return [w for t, w in surface_words(question) if t][:most]
