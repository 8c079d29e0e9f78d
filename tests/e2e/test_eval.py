"""`make eval` end to end on two bundled cases: through the local stack, offline and on the
fake model (which invents citations: none may reach a report)."""

from __future__ import annotations

from bench.eval.__main__ import fake_models, run, table
from bench.eval.cases import load_all


def test_the_offline_default_answers_the_bundled_questions_with_supported_citations() -> None:
    cases = [c for c in load_all() if c.slug.startswith(("01-", "08-"))]

    result = run("offline", {}, cases)

    assert result.failed == []
    assert [s.case for s in result.scores] == [c.slug for c in cases]
    totals = result.totals()
    assert totals["recall"] >= 0.5
    assert (totals["unsupported"], totals["invented"], totals["dangling"]) == (0, 0, 0)
    assert "overall" in table(result)


def test_citations_a_model_invents_never_reach_the_report() -> None:
    cases = [c for c in load_all() if c.slug.startswith("02-")]

    with fake_models() as (settings, server):
        result = run("fake-model", settings, cases)
        invented = server.stats.invented

    assert result.failed == []
    assert invented > 0
    assert result.totals()["invented"] == 0
