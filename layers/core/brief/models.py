"""The records Brief stores in S3 and returns from its API.

Each stored record is written once (`If-None-Match: *`) and carries a version, so a reader
can tell a record from an older release. Models are strict: unknown fields are an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from brief.ids import JobId

MAX_SOURCES = 20
MAX_QUESTION_CHARS = 2_000


def utcnow() -> datetime:
    """Timezone-aware now; every stored timestamp is UTC."""
    return datetime.now(UTC)


class Strict(BaseModel):
    """Base of every Brief model: frozen, and unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Usage(Strict):
    """What model calls cost: tokens in and out, calls made, and the estimated price."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            calls=self.calls + other.calls,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
        )


class ResearchRequest(Strict):
    """What a caller asks for: a question and the sources to answer it from."""

    question: Annotated[str, Field(min_length=3, max_length=MAX_QUESTION_CHARS)]
    sources: Annotated[list[AnyHttpUrl], Field(min_length=1, max_length=MAX_SOURCES)]

    @field_validator("question")
    @classmethod
    def _question_has_words(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) < 3:
            raise ValueError("the question needs at least a few words")
        return value

    @field_validator("sources")
    @classmethod
    def _no_duplicate_sources(cls, value: list[AnyHttpUrl]) -> list[AnyHttpUrl]:
        seen: set[str] = set()
        unique = []
        for url in value:
            if str(url) not in seen:
                seen.add(str(url))
                unique.append(url)
        return unique


class JobRecord(Strict):
    """`jobs/{job}/request.json`: the validated request, its owner and when it arrived."""

    v: Literal[1] = 1
    job_id: JobId
    owner: str
    created_at: datetime
    request: ResearchRequest


SourceState = Literal["ok", "failed"]


class SourceOutcome(Strict):
    """What happened to one source; a failure carries a reason a user can act on."""

    index: int
    url: str
    state: SourceState
    reason: str | None = None
    final_url: str | None = None
    canonical_url: str | None = None
    title: str | None = None
    content_type: str | None = None
    bytes: int = 0
    chars: int = 0
    fetch_ms: int = 0


class SourceRecord(Strict):
    """`jobs/{job}/sources/{i}.json`: one source's outcome and, when usable, its text."""

    v: Literal[1] = 1
    job_id: JobId
    outcome: SourceOutcome
    text: str = ""
    fetched_at: datetime


class Retrieval(Strict):
    """`jobs/{job}/retrieval.json`: every source's outcome, written once retrieval is over.

    Status reads this one small object instead of every (large) source record.
    """

    v: Literal[1] = 1
    job_id: JobId
    sources: list[SourceOutcome]
    started_at: datetime
    finished_at: datetime

    @property
    def usable(self) -> list[SourceOutcome]:
        """Sources that produced text, in request order."""
        return [s for s in self.sources if s.state == "ok"]


class SummaryRecord(Strict):
    """`jobs/{job}/summaries/{i}.json`: the summary of source i, or why there is none."""

    v: Literal[1] = 1
    job_id: JobId
    index: int
    state: SourceState
    text: str = ""
    reason: str | None = None
    model: str
    usage: Usage = Usage()
    started_at: datetime
    finished_at: datetime


class CombineClaim(Strict):
    """`jobs/{job}/combine.claim`: which summarize delivery won the fan-in, and when."""

    v: Literal[1] = 1
    job_id: JobId
    owner: int
    at: datetime


class Citation(Strict):
    """A numbered source as the report cites it: `[n]`."""

    n: int
    index: int
    url: str
    title: str | None = None


class StageTimings(Strict):
    """Wall-clock milliseconds from job creation to the end of each stage."""

    queued_ms: int | None = None
    retrieval_ms: int | None = None
    summarize_ms: int | None = None
    combine_ms: int | None = None
    total_ms: int | None = None


class Report(Strict):
    """`jobs/{job}/report.json`: the answer, its citations and what could not be used."""

    v: Literal[1] = 1
    job_id: JobId
    question: str
    markdown: str
    citations: list[Citation]
    missing: list[SourceOutcome]
    model: str
    usage: Usage = Usage()
    created_at: datetime


FailedStage = Literal["research", "summarize", "combine", "deadletter"]


class JobFailure(Strict):
    """`jobs/{job}/failed.json`: why a job ended without a report."""

    v: Literal[1] = 1
    job_id: JobId
    stage: FailedStage
    reason: str
    at: datetime


EventKind = Literal[
    "job_created",
    "retrieval_started",
    "source_fetched",
    "source_failed",
    "retrieval_done",
    "summary_done",
    "summary_failed",
    "combine_started",
    "report_ready",
    "job_failed",
]


class Event(Strict):
    """`jobs/{job}/events/{µs}-{kind}[-{i}].json`: one progress event, never rewritten."""

    v: Literal[1] = 1
    job_id: JobId
    kind: EventKind
    at: datetime
    index: int | None = None
    detail: str | None = None


JobState = Literal["queued", "retrieving", "summarizing", "combining", "done", "failed"]


class JobView(Strict):
    """A job's status as the API shows it, derived from the keys present in S3."""

    job_id: JobId
    state: JobState
    question: str
    created_at: datetime
    sources: list[SourceOutcome]
    summaries_done: int
    summaries_expected: int | None
    reason: str | None = None
    timings: StageTimings
