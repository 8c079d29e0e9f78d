"""Where the offline summarizer loses each nugget its report misses: in no summary (the
summarize stage did not keep a sentence stating it), or in a summary but ranked below what
the report took (the combine stage chose others). `python -m bench.eval --direct --losses`
prints them, so a change to the summarizer can be aimed at the stage that loses most.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.eval import direct
from bench.eval.cases import Case, Nugget
from bench.eval.metrics import score
from brief.extractive import ExtractiveSummarizer, split_sentences
from brief.extractive.summarizer import candidates
from brief.ports import SourceText


@dataclass(frozen=True)
class Loss:
    """One missed nugget and where it was lost."""

    nugget: str
    in_summaries: tuple[int, ...]  # the sources whose summary states it
    rank: int | None  # its best candidate's place in the combine's ranking, from 1 (None: none)
    candidates: int  # how many candidates the combine ranked

    @property
    def stage(self) -> str:
        return "combine" if self.in_summaries else "summarize"

    def describe(self) -> str:
        if not self.in_summaries:
            return f"{self.nugget}: in no summary"
        cited = "".join(f"[{n}]" for n in self.in_summaries)
        if self.rank is None:
            return (
                f"{self.nugget}: in the summary of {cited}, not a candidate (off the question,"
                " or merged into a near-duplicate's finding)"
            )
        return (
            f"{self.nugget}: in the summary of {cited}, ranked {self.rank} of "
            f"{self.candidates} candidates"
        )


async def losses(case: Case, summarizer: ExtractiveSummarizer) -> list[Loss]:
    """The case's nuggets the report misses, each with where it was lost."""
    numbered, texts = await direct.summaries(case, summarizer)
    markdown = await direct.report_of(case, summarizer, numbered)
    found = set(score(case, markdown, texts).found)
    ranked = [f.text for f in candidates(case.question, numbered)]
    return [_loss(n, numbered, ranked) for n in case.nuggets if n.id not in found]


def _loss(nugget: Nugget, summaries: list[SourceText], ranked: list[str]) -> Loss:
    holding = tuple(s.n for s in summaries if nugget.found_in(s.text))
    rank = next(
        (
            i + 1
            for i, text in enumerate(ranked)
            if any(nugget.in_sentence(s) for s in split_sentences(text))
        ),
        None,
    )
    return Loss(nugget.id, holding, rank if holding else None, len(ranked))


def summary_line(found: list[Loss]) -> str:
    """The missed nuggets by the stage that lost them, and where the combine ranked its own."""
    lost = [loss for loss in found if loss.stage == "combine"]
    ranks = sorted(loss.rank for loss in lost if loss.rank is not None)
    where = f" (ranked {ranks[0]}-{ranks[-1]})" if ranks else ""
    return (
        f"{len(found)} missed: {len(found) - len(lost)} in no summary, "
        f"{len(lost)} in a summary but not chosen{where}"
    )
