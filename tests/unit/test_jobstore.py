"""The job store: the status a user sees is derived from which records exist, and what
they read (events, the report) is complete, ordered and never rewritten."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from brief.adapters.memory import MemoryBlobStore
from brief.errors import JobNotFound
from brief.jobstore import JobStore, timings_from_keys
from brief.models import (
    EventKind,
    FailedStage,
    JobFailure,
    JobRecord,
    JobState,
    Report,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
    SourceRecord,
    StageTimings,
    SummaryRecord,
)

JOB = "0123456789abcdef0123456789abcdef"
OTHER_JOB = "fedcba9876543210fedcba9876543210"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
QUESTION = "Why do glaciers move?"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event_key(seconds: float, kind: EventKind, index: int | None = None) -> str:
    """The key JobStore.event writes for an event at T0 + `seconds`."""
    micros = int(at(seconds).timestamp() * 1_000_000)
    suffix = f"-{index}" if index is not None else ""
    return f"jobs/{JOB}/events/{micros:016d}-{kind}{suffix}.json"


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def store(blobs: MemoryBlobStore) -> JobStore:
    return JobStore(blobs)


# timings_from_keys

WHOLE_RUN = [
    f"jobs/{JOB}/request.json",
    event_key(0, "job_created"),
    event_key(0.25, "retrieval_started"),
    event_key(1.0, "source_fetched", 0),
    event_key(1.2, "source_failed", 1),
    f"jobs/{JOB}/sources/0.json",
    event_key(2.0, "retrieval_done"),
    f"jobs/{JOB}/retrieval.json",
    event_key(2.75, "summary_done", 0),
    event_key(3.25, "summary_done", 3),
    event_key(3.5, "summary_failed", 2),
    f"jobs/{JOB}/summaries/0.json",
    f"jobs/{JOB}/combine.claim",
    event_key(3.6, "combine_started"),
    event_key(4.0, "report_ready"),
    f"jobs/{JOB}/report.json",
]


def test_timings_of_a_whole_run_split_the_total_into_its_stages() -> None:
    timings = timings_from_keys(T0, WHOLE_RUN)

    assert timings == StageTimings(
        queued_ms=250,  # created -> retrieval started
        retrieval_ms=1750,  # retrieval started -> retrieval done
        summarize_ms=1500,  # retrieval done -> last summary, failed ones included
        combine_ms=500,  # last summary -> report ready
        total_ms=4000,  # created -> report ready
    )


def test_timings_do_not_depend_on_the_order_of_the_keys() -> None:
    assert timings_from_keys(T0, list(reversed(WHOLE_RUN))) == timings_from_keys(T0, WHOLE_RUN)


def test_timings_of_a_job_in_progress_leave_unfinished_stages_empty() -> None:
    keys = [event_key(0, "job_created"), event_key(0.5, "retrieval_started")]

    assert timings_from_keys(T0, keys) == StageTimings(queued_ms=500)


def test_timings_of_a_job_that_was_never_picked_up_are_all_empty() -> None:
    assert timings_from_keys(T0, [f"jobs/{JOB}/request.json"]) == StageTimings()


def test_timings_of_a_failed_job_end_at_the_failure() -> None:
    keys = [
        event_key(0.25, "retrieval_started"),
        event_key(2.0, "retrieval_done"),
        event_key(7.5, "job_failed"),
    ]

    assert timings_from_keys(T0, keys) == StageTimings(
        queued_ms=250, retrieval_ms=1750, total_ms=7500
    )


def test_redelivered_stages_time_from_the_first_start_and_the_first_report() -> None:
    keys = [
        *WHOLE_RUN,
        event_key(30.0, "retrieval_started"),  # a redelivery after the job was done
        event_key(31.0, "report_ready"),  # a second combine that lost the race
    ]

    timings = timings_from_keys(T0, keys)

    assert timings.queued_ms == 250
    assert timings.total_ms == 4000


def test_timings_use_the_report_time_when_its_event_is_not_written_yet() -> None:
    keys = [k for k in WHOLE_RUN if "report_ready" not in k]

    timings = timings_from_keys(T0, keys, reported_at=at(4.5))

    assert timings.combine_ms == 1000
    assert timings.total_ms == 4500


def test_timings_prefer_the_report_event_over_the_report_time() -> None:
    assert timings_from_keys(T0, WHOLE_RUN, reported_at=at(9.0)).total_ms == 4000


# JobStore.view: state from the keys present


def outcome(index: int, ok: bool = True) -> SourceOutcome:
    return SourceOutcome(
        index=index,
        url=f"https://example.org/{index}",
        state="ok" if ok else "failed",
        reason=None if ok else "the server answered 404 Not Found",
    )


SOURCES = [outcome(0), outcome(1, ok=False), outcome(2)]


def report(
    markdown: str = "# Why do glaciers move?\n\nIce flows.\n", seconds: float = 4.0
) -> Report:
    return Report(
        job_id=JOB,
        question=QUESTION,
        markdown=markdown,
        citations=[],
        missing=[],
        model="extractive",
        created_at=at(seconds),
    )


async def create(store: JobStore, owner: str = "alice") -> None:
    request = ResearchRequest.model_validate(
        {"question": QUESTION, "sources": [o.url for o in SOURCES]}
    )
    await store.create(JobRecord(job_id=JOB, owner=owner, created_at=T0, request=request))
    await store.event(JOB, "job_created", T0)


async def start_retrieval(store: JobStore) -> None:
    await store.event(JOB, "retrieval_started", at(0.25))


async def store_sources(store: JobStore) -> None:
    for i, o in enumerate(SOURCES):
        await store.put_source(
            SourceRecord(
                job_id=JOB, outcome=o, text="Ice." if o.state == "ok" else "", fetched_at=at(1)
            )
        )
        await store.event(
            JOB, "source_fetched" if o.state == "ok" else "source_failed", at(1 + i / 10), index=i
        )


async def finish_retrieval(store: JobStore) -> None:
    await store.put_retrieval(
        Retrieval(job_id=JOB, sources=SOURCES, started_at=at(0.25), finished_at=at(2))
    )
    await store.event(JOB, "retrieval_done", at(2))


async def summarize(store: JobStore, index: int, ok: bool, seconds: float) -> None:
    await store.put_summary(
        SummaryRecord(
            job_id=JOB,
            index=index,
            state="ok" if ok else "failed",
            text="Ice flows." if ok else "",
            reason=None if ok else "the model could not summarize this source: empty",
            model="extractive",
            started_at=at(seconds - 0.5),
            finished_at=at(seconds),
        )
    )
    await store.event(JOB, "summary_done" if ok else "summary_failed", at(seconds), index=index)


async def summarize_first(store: JobStore) -> None:
    await summarize(store, 0, ok=True, seconds=3.0)


async def summarize_second(store: JobStore) -> None:
    await summarize(store, 2, ok=False, seconds=3.5)


async def claim_combine(store: JobStore) -> None:
    await store.claim_combine(JOB, owner=2, at=at(3.6))
    await store.event(JOB, "combine_started", at(3.6))


async def write_report(store: JobStore) -> None:
    await store.put_report(report(seconds=4.0))


async def announce_report(store: JobStore) -> None:
    await store.event(JOB, "report_ready", at(4.2))


Step = Callable[[JobStore], Awaitable[None]]

# Each step a stage takes, with the state, summaries (done, expected) and total a user then sees.
WALK: list[tuple[Step, JobState, int, int | None, int | None]] = [
    (create, "queued", 0, None, None),
    (start_retrieval, "retrieving", 0, None, None),
    (store_sources, "retrieving", 0, None, None),
    (finish_retrieval, "summarizing", 0, 2, None),
    (summarize_first, "summarizing", 1, 2, None),
    (summarize_second, "summarizing", 2, 2, None),
    (claim_combine, "combining", 2, 2, None),
    (write_report, "done", 2, 2, 4000),  # timed by the report's created_at
    (announce_report, "done", 2, 2, 4200),  # timed by the report_ready event
]


async def test_view_follows_the_job_through_every_stage(store: JobStore) -> None:
    seen = []
    for step, *_ in WALK:
        await step(store)
        view = await store.view(JOB)
        seen.append(
            (view.state, view.summaries_done, view.summaries_expected, view.timings.total_ms)
        )

    assert seen == [tuple(expected) for _, *expected in WALK]


async def test_view_shows_the_question_and_every_source_outcome_once_retrieved(
    store: JobStore,
) -> None:
    for step, *_ in WALK[:4]:
        await step(store)

    view = await store.view(JOB)

    assert view.question == QUESTION
    assert view.created_at == T0
    assert [(s.index, s.state, s.reason) for s in view.sources] == [
        (0, "ok", None),
        (1, "failed", "the server answered 404 Not Found"),
        (2, "ok", None),
    ]
    assert view.timings.queued_ms == 250
    assert view.timings.retrieval_ms == 1750


FAILURE_POINTS: list[tuple[int, FailedStage]] = [
    (1, "research"),  # queued
    (3, "research"),  # retrieving
    (5, "summarize"),  # summarizing
    (7, "deadletter"),  # combining
]


@pytest.mark.parametrize(
    ("steps", "stage"), FAILURE_POINTS, ids=[WALK[n - 1][1] for n, _ in FAILURE_POINTS]
)
async def test_a_recorded_failure_wins_over_any_state_in_progress(
    store: JobStore, steps: int, stage: FailedStage
) -> None:
    for step, *_ in WALK[:steps]:
        await step(store)
    reason = f"the {stage} step failed repeatedly and was given up"
    await store.fail(JobFailure(job_id=JOB, stage=stage, reason=reason, at=at(9)))
    await store.event(JOB, "job_failed", at(9), detail=reason)

    view = await store.view(JOB)

    assert view.state == "failed"
    assert view.reason == reason
    assert view.timings.total_ms == 9000


async def test_the_first_failure_reason_is_the_one_shown(store: JobStore) -> None:
    await create(store)
    first = JobFailure(job_id=JOB, stage="research", reason="no source could be used", at=at(1))
    later = JobFailure(job_id=JOB, stage="deadletter", reason="given up", at=at(2))

    assert await store.fail(first) is True
    assert await store.fail(later) is False
    assert (await store.view(JOB)).reason == "no source could be used"


async def test_a_job_with_a_report_is_done_even_if_a_failure_is_recorded_after(
    store: JobStore,
) -> None:
    for step, *_ in WALK:
        await step(store)
    await store.fail(JobFailure(job_id=JOB, stage="deadletter", reason="late", at=at(9)))

    assert (await store.view(JOB)).state == "done"


# Owners


async def test_another_owner_cannot_see_the_job(store: JobStore) -> None:
    await create(store, owner="alice")

    with pytest.raises(JobNotFound) as caught:
        await store.view(JOB, owner="mallory")
    with pytest.raises(JobNotFound):
        await store.job(JOB, owner="mallory")
    assert str(caught.value) == f"no job {JOB}"


async def test_the_owner_and_the_pipeline_can_see_the_job(store: JobStore) -> None:
    await create(store, owner="alice")

    assert (await store.view(JOB, owner="alice")).state == "queued"
    assert (await store.view(JOB)).state == "queued"  # stages pass no owner


async def test_an_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.view(OTHER_JOB)


# Events


async def test_events_come_back_in_time_order_whatever_order_they_were_written(
    store: JobStore,
) -> None:
    await store.event(JOB, "retrieval_done", at(2.0), detail="2 of 3 usable")
    await store.event(JOB, "job_created", at(0))
    await store.event(JOB, "source_failed", at(1.2), index=1, detail="timed out after 10 s")
    await store.event(JOB, "retrieval_started", at(0.25))
    await store.event(OTHER_JOB, "job_created", at(0.1))

    events = await store.events(JOB)

    assert [(e.kind, e.index, e.detail) for _, e in events] == [
        ("job_created", None, None),
        ("retrieval_started", None, None),
        ("source_failed", 1, "timed out after 10 s"),
        ("retrieval_done", None, "2 of 3 usable"),
    ]
    assert [e.at for _, e in events] == [at(0), at(0.25), at(1.2), at(2.0)]
    cursors = [c for c, _ in events]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 4
    assert all("/" not in c for c in cursors)


async def test_events_after_a_cursor_are_only_the_newer_ones(store: JobStore) -> None:
    timeline: list[tuple[float, EventKind]] = [
        (0, "job_created"),
        (0.25, "retrieval_started"),
        (2, "retrieval_done"),
    ]
    for seconds, kind in timeline:
        await store.event(JOB, kind, at(seconds))
    first_page = await store.events(JOB)
    cursor = first_page[1][0]

    await store.event(JOB, "summary_done", at(3), index=0)
    newer = await store.events(JOB, after=cursor)

    assert [e.kind for _, e in newer] == ["retrieval_done", "summary_done"]
    assert await store.events(JOB, after=newer[-1][0]) == []


async def test_an_event_is_never_rewritten(store: JobStore) -> None:
    await store.event(JOB, "job_failed", at(1), detail="first reason")
    await store.event(JOB, "job_failed", at(1), detail="second reason")

    assert [e.detail for _, e in await store.events(JOB)] == ["first reason"]


# The report


async def test_a_second_report_does_not_overwrite_the_first(
    store: JobStore, blobs: MemoryBlobStore
) -> None:
    first = report("# First\n", seconds=4)
    second = report("# Second\n", seconds=5)

    assert await store.put_report(first) == first
    assert await store.put_report(second) == first

    assert await store.report(JOB) == first
    assert await store.report_markdown(JOB) == "# First\n"
    assert blobs.content_types[f"jobs/{JOB}/report.md"] == "text/markdown"


async def test_reports_written_at_the_same_moment_agree_on_one_winner(store: JobStore) -> None:
    candidates = [report(f"# Draft {i}\n", seconds=4 + i) for i in range(5)]

    returned = await asyncio.gather(*(store.put_report(r) for r in candidates))

    winner = await store.report(JOB)
    assert winner in candidates
    assert all(r == winner for r in returned)
    assert await store.report_markdown(JOB) == winner.markdown


async def test_markdown_is_written_from_the_winner_when_the_winner_died_before_writing_it(
    store: JobStore, blobs: MemoryBlobStore
) -> None:
    winner = report("# Winner\n", seconds=4)
    await blobs.put(f"jobs/{JOB}/report.json", winner.model_dump_json().encode())

    returned = await store.put_report(report("# Loser\n", seconds=5))

    assert returned == winner
    assert await store.report_markdown(JOB) == "# Winner\n"
