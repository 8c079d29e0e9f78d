"""A job's state and stage timings from the names of its objects alone (no reads)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from brief import keys
from brief.models import JobState, StageTimings


def state_from_keys(present: set[str]) -> JobState:
    """A job's state from the names of its objects (relative to `keys.job(job_id)`)."""
    if keys.REPORT in present:
        return "done"
    if keys.FAILED in present:
        return "failed"
    if keys.CANCELLED in present:
        return "cancelled"
    deepest, within = keys.deepest_level(present)
    if deepest > 1:  # a deep job past its first level: that level's stage
        if keys.COMBINE_CLAIM in within:
            return "combining"
        return "summarizing" if keys.RETRIEVAL in within else "retrieving"
    if keys.COMBINE_CLAIM in present:
        return "combining"
    if keys.RETRIEVAL in present:
        return "summarizing"
    if any(k.startswith(keys.EVENTS) and "retrieval_started" in k for k in present):
        return "retrieving"
    return "queued"


def relative_names(job_id: str, listed: Sequence[str]) -> set[str]:
    """The names of a job's listed objects under its prefix (what `state_from_keys` reads)."""
    prefix = keys.job(job_id)
    return {k.removeprefix(prefix) for k in listed}


def latest_waits(listed: Sequence[str], present: set[str]) -> dict[int | None, str]:
    """The key of each source's latest `model_retry` event, for the sources still without a
    summary (None: the combine's), from the job's listing."""
    latest: dict[int | None, tuple[int, str]] = {}
    for key in listed:
        name = keys.event_name(key)
        if name is None or name.kind != "model_retry":
            continue
        if name.index is not None and keys.summary_name(name.index) in present:
            continue
        if name.index not in latest or name.micros >= latest[name.index][0]:
            latest[name.index] = (name.micros, key)
    return {index: key for index, (_, key) in latest.items()}


def timings_from_keys(
    created_at: datetime, listed: Sequence[str], *, reported_at: datetime | None = None
) -> StageTimings:
    """Stage timings from event keys alone (their names carry the time), no reads needed."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for key in listed:
        name = keys.event_name(key)
        if name:
            first[name.kind] = min(first.get(name.kind, name.micros), name.micros)
            last[name.kind] = max(last.get(name.kind, name.micros), name.micros)
    created = keys.micros(created_at)

    def span(start: int | None, end: int | None) -> int | None:
        return None if start is None or end is None else round((end - start) / 1000)

    retrieval_start = first.get("retrieval_started")
    retrieval_end = last.get("retrieval_done")
    summaries_end = last.get("summary_done")
    if "summary_failed" in last:
        summaries_end = max(summaries_end or 0, last["summary_failed"])
    report = first.get("report_ready")
    if report is None and reported_at is not None:
        report = keys.micros(reported_at)
    end = report or first.get("job_failed")
    return StageTimings(
        queued_ms=span(created, retrieval_start),
        retrieval_ms=span(retrieval_start, retrieval_end),
        summarize_ms=span(retrieval_end, summaries_end),
        combine_ms=span(summaries_end, report),
        total_ms=span(created, end),
    )
