"""`make eval --direct --losses`: where a missed nugget was lost, summarize or combine."""

from __future__ import annotations

from bench.eval import direct
from bench.eval.cases import Nugget, load_all
from bench.eval.losses import Loss, _loss, losses, summary_line
from bench.eval.metrics import score
from brief.extractive import ExtractiveSummarizer
from brief.ports import SourceText

WAGGLE = Nugget("waggle", "Waggle dance.", (("waggle",), ("dance",)), ("a",))


def summary(n: int, text: str) -> SourceText:
    return SourceText(n=n, title=None, url=f"https://eval.test/{n}", text=text)


def test_a_nugget_no_summary_states_was_lost_in_summarize() -> None:
    loss = _loss(WAGGLE, [summary(1, "Scouts search for hollow trees.")], ["Scouts search."])

    assert (loss.stage, loss.rank) == ("summarize", None)
    assert loss.describe() == "waggle: in no summary"


def test_a_nugget_in_a_summary_was_lost_in_combine_at_its_rank() -> None:
    summaries = [summary(1, "Scouts search."), summary(2, "Scouts perform a waggle dance.")]
    ranked = ["Scouts search.", "Bees fly.", "Scouts perform a waggle dance."]

    loss = _loss(WAGGLE, summaries, ranked)

    assert (loss.stage, loss.in_summaries, loss.rank, loss.candidates) == ("combine", (2,), 3, 3)
    assert loss.describe() == "waggle: in the summary of [2], ranked 3 of 3 candidates"
    assert "not a candidate" in _loss(WAGGLE, summaries, ranked[:2]).describe()


def test_the_summary_line_counts_each_stage() -> None:
    found = [Loss("a", (), None, 9), Loss("b", (1,), 12, 20), Loss("c", (2,), 17, 20)]

    assert summary_line(found) == (
        "3 missed: 1 in no summary, 2 in a summary but not chosen (ranked 12-17)"
    )


async def test_every_case_s_losses_are_exactly_its_missed_nuggets() -> None:
    summarizer = ExtractiveSummarizer()
    for case in load_all():
        markdown, texts = await direct.report(case, summarizer)
        missed = {n.id for n in case.nuggets} - set(score(case, markdown, texts).found)
        numbered, _ = await direct.summaries(case, summarizer)
        by_id = {n.id: n for n in case.nuggets}

        found = await losses(case, summarizer)

        assert {loss.nugget for loss in found} == missed
        for loss in found:
            stating = {s.n for s in numbered if by_id[loss.nugget].found_in(s.text)}
            assert set(loss.in_summaries) == stating
