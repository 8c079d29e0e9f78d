"""Chaos on the local stack: jobs through the API under seeded faults keep every invariant."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from brief.models import Citation, FollowUp, LevelPlan, Report, TreeNode
from brief_testing.chaos import ChaosOptions, JobAudit, Ledger, run_chaos, tree_problems
from brief_testing.faults import FaultPlan
from brief_testing.pages import PageFaults, PageServer


def test_twenty_jobs_under_faults_end_with_one_report_each_and_no_lost_summary() -> None:
    # Higher rates than `make chaos` so that twenty jobs meet every kind of fault; a short
    # visibility timeout brings a killed worker's messages back within the test.
    plan = replace(
        FaultPlan.default(seed=7),
        crash_after_write=0.2,
        duplicate_delivery=0.2,
        s3_outage=0.01,
        sqs_error=0.1,
        sqs_refused=0.05,
        model_429=0.15,
        page_reset=0.05,
        page_timeout=0.05,
        visibility_timeout_s=4,
    )
    ledger = asyncio.run(run_chaos(ChaosOptions(jobs=20, sources=3, plan=plan, deadline_s=240)))

    assert ledger.breaches() == [], ledger.render()
    assert ledger.submitted == 20
    assert ledger.batch_size == 4  # a fifth as one batch, its status checked against its jobs
    assert ledger.batch_mismatches == []
    assert {a.state for a in ledger.audits} <= {"done", "failed"}
    done = ledger.by_state("done")
    assert done, ledger.render()
    assert all(a.report_writes == 1 for a in done)
    # A job's combine went out from its fan-in or, when that never sent it, from a sweep.
    assert all(ledger.combine_sends[a.job_id] + (a.job_id in ledger.resumed) for a in done)
    assert ledger.dlq_left == {
        "IntakeDeadLetterQueue": 0,
        "SummarizeDeadLetterQueue": 0,
        "CombineDeadLetterQueue": 0,
    }
    kinds = " ".join(ledger.faults)
    for kind in ("worker killed before ack", "duplicate delivery", "s3 503", "model 429"):
        assert kind in kinds, ledger.render()
    # Every tenth job is deep (jobs 9 and 19): one plan for its level 2, whose follow-ups'
    # searches found sources, and a report whose tree the breaches above held to the plan.
    deep = ledger.deep()
    assert ledger.deep_submitted == len(deep) == 2
    grown = [a for a in deep if a.state == "done" and a.plan_writes == {2: 1}]
    assert grown, ledger.render()
    assert all(a.follow_ups == 2 and a.level_usable.get(2) for a in grown), ledger.render()
    assert all(a.level_events == 1 for a in grown), ledger.render()


JOB = "0123456789abcdef0123456789abcdef"
AT = datetime(2025, 1, 1, tzinfo=UTC)


def deep_report(tree: list[TreeNode], cited: list[int]) -> Report:
    return Report(
        job_id=JOB,
        question="Why?",
        markdown="# Why?\n",
        citations=[Citation(n=i + 1, index=i, url=f"http://x/{i}") for i in cited],
        missing=[],
        model="extractive",
        created_at=AT,
        tree=tree,
    )


def test_the_deep_audit_holds_a_report_to_its_plans_and_every_level_to_its_summaries() -> None:
    plan = LevelPlan(
        job_id=JOB,
        level=2,
        follow_ups=[
            FollowUp(node="2.1", parent="1", question="What of a?", query="a bees", limit=3),
            FollowUp(node="2.2", parent="1", question="What of b?", query="b bees", limit=3),
        ],
        at=AT,
    )
    root = TreeNode(node="1", parent=None, question="Why?", level=1, sources=[0, 1])
    a = TreeNode(node="2.1", parent="1", question="What of a?", level=2, sources=[2])
    b = TreeNode(node="2.2", parent="1", question="What of b?", level=2, sources=[5])
    usable = {1: [0, 1], 2: [2, 5]}
    present = {f"summaries/{i}.json" for i in (0, 1, 2, 5)}
    assert tree_problems(deep_report([root, a, b], [0, 1, 2, 5]), [plan], usable, present) == []

    # A page both searches found is read once and answers both questions.
    shared = b.model_copy(update={"sources": [5, 2]})
    assert (
        tree_problems(deep_report([root, a, shared], [0, 1, 2, 5]), [plan], usable, present) == []
    )
    # A tree that lost a follow-up, or asks one the plan did not.
    problems = tree_problems(deep_report([root, a], [0, 1, 2]), [plan], usable, present)
    assert any("follow-ups are not the plans'" in p for p in problems), problems
    assert any("level 2's nodes name sources [2]" in p for p in problems), problems
    # A level planned that never ran, and one cited source of level 2 without its summary.
    problems = tree_problems(
        deep_report([root, a, b], [0, 1, 2, 5]), [plan], {1: [0, 1]}, present - {"summaries/5.json"}
    )
    assert "level 2 was planned but its retrieval is not stored" in problems
    assert "the report cites [6], not a usable source of any level" in problems
    problems = tree_problems(
        deep_report([root, a, b], [0, 1, 2, 5]), [plan], usable, present - {"summaries/5.json"}
    )
    assert problems == ["the report cites [6], whose summary is not stored"]
    # No tree at all; and a level that ran without a plan.
    assert (
        "the report has no tree" in tree_problems(deep_report([], []), [plan], usable, present)[-1:]
    )
    assert "level 2 ran without a plan" in tree_problems(
        deep_report([root], [0, 1]), [], usable, present
    )


def test_a_plan_written_twice_or_a_lost_level_summary_breaks_the_run() -> None:
    ledger = Ledger(ChaosOptions(jobs=1), submitted=1, deep_submitted=1)
    audit = JobAudit(JOB, "done", report_writes=1, markdown_writes=1, depth=2)
    ledger.audits = [audit]
    assert ledger.breaches() == []
    audit.plan_writes = {2: 2}
    audit.lost_summaries = [4]
    assert ledger.breaches() == [
        f"job {JOB} lost the summaries of [4]",
        f"deep job {JOB}: levels/2/plan.json written 2 times",
    ]
    assert "INVARIANTS BREACHED (2)" in ledger.render()


def test_page_faults_reset_or_stall_a_seeded_share_of_requests() -> None:
    faults = PageFaults(reset=0.3, timeout=0.3, stall_s=1.0, seed=3)
    paths = [f"/01-when-a-colony-splits.html?n={n}" for n in range(40)]
    first: dict[str | None, str] = {}
    for path in paths:  # a pure function of the seed and the request: known in advance
        first.setdefault(faults.draw(path, 0), path)
    server = PageServer(faults=faults).start()
    try:
        with httpx.Client(base_url=server.url, timeout=0.5) as client:
            assert client.get(first[None]).status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                client.get(first["timeout"])
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.get(first["reset"])
    finally:
        server.stop()
    assert server.injected == Counter({"reset": 1, "timeout": 1})
