"""A deep job's tree from its plans and retrievals: which sources answered which question."""

from __future__ import annotations

from datetime import UTC, datetime

from brief import deep
from brief.models import (
    FollowUp,
    JobRecord,
    LevelPlan,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
)

JOB = "0123456789abcdef0123456789abcdef"
AT = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_page_two_searches_found_is_read_once_and_answers_both_questions() -> None:
    request = ResearchRequest.model_validate(
        {"question": "Why do glaciers move?", "sources": ["https://a.test/1"], "depth": 2}
    )
    job = JobRecord(job_id=JOB, owner="alice", created_at=AT, request=request)
    plan = LevelPlan(
        job_id=JOB,
        level=2,
        follow_ups=[
            FollowUp(
                node="2.1", parent="1", question="What is basal sliding?", query="q1", limit=2
            ),
            FollowUp(node="2.2", parent="1", question="What is meltwater?", query="q2", limit=2),
        ],
        at=AT,
    )
    level1 = Retrieval(
        job_id=JOB,
        sources=[SourceOutcome(index=0, url="https://a.test/1", state="ok")],
        started_at=AT,
        finished_at=AT,
    )
    shared = "https://b.test/shared"
    level2 = Retrieval(
        job_id=JOB,
        level=2,
        sources=[
            SourceOutcome(index=1, url=shared, state="ok", kind="search"),
            SourceOutcome(index=2, url="https://b.test/own", state="ok", kind="search"),
            SourceOutcome(
                index=3,
                url=shared,
                state="failed",
                kind="search",
                reason="also found by another search",
            ),
        ],
        started_at=AT,
        finished_at=AT,
    )

    nodes = deep.tree(job, [plan], [level1, level2])

    assert [(n.node, n.sources) for n in nodes] == [("1", [0]), ("2.1", [1, 2]), ("2.2", [1])]
    assert deep.first_index(job, [plan], 1) == 0
    assert deep.first_index(job, [plan], 2) == 1
