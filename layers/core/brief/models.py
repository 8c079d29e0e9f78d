"""The records Brief stores in S3 and returns from its API.

Each stored record is written once (`If-None-Match: *`) and carries a version, so a reader
can tell a record from an older release. Models are strict: unknown fields are an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from brief.ids import BatchId, JobId
from brief.urls import same_page, unusable

MAX_QUESTION_CHARS = 2_000
"""The longest question a request may ask, and so the longest a summarize message carries."""

QueueRole = Literal["intake", "summarize", "combine"]
"""The work queues, by the stage that consumes each (a deployment maps each to a URL)."""
QUEUE_ROLES: tuple[QueueRole, ...] = get_args(QueueRole)

MAX_SOURCES = 20
MAX_DOCUMENTS = 50
MAX_DEPTH = 3
MAX_BREADTH = 6
MAX_URL_CHARS = 4_096
"""The longest URL a source may be (before and after it is normalized), and the longest URL
or query label a status shows."""
MAX_S3_KEY_BYTES = 1_024  # S3's own limit on a key
MAX_REASON_CHARS = 500
"""A failure reason (of a source, a summary or a job) or an event's detail is cut to this."""
MAX_TITLE_CHARS = 300
"""A source's title or content type, as a status shows it, is cut to this."""

_REFUSED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_REFUSED}]")
"""C0 and C1 controls but tab and line breaks, DEL, and the bidirectional overrides and
isolates (which can make text read differently from what it holds): refused in what a caller
writes, replaced in what a status shows."""
_UNSHOWABLE = re.compile(rf"[{_REFUSED}\ud800-\udfff]")  # also lone surrogates: not UTF-8
_URI_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


def _no_controls(value: str, info: ValidationInfo | None = None) -> str:
    """`value`, if it holds no character `_CONTROL` refuses; else a ValueError naming one.
    A record read back from the store (context `{"stored": True}`) is taken as it was."""
    if info is not None and info.context and info.context.get("stored"):
        return value
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"U+{ord(found.group()):04X} at character {found.start() + 1} is refused: no control"
            " characters but tab and line breaks, no bidirectional overrides or isolates"
            " (U+202A-U+202E, U+2066-U+2069)"
        )
    return value


def shorten(text: str, limit: int) -> str:
    """`text` as a status shows it: controls, bidirectional overrides and lone surrogates
    replaced by U+FFFD, and cut to `limit` characters (the last an ellipsis) when longer.

    What a server or a model sent is bounded here, once, so nothing it sends can blow up a
    status past Lambda's 6 MB response limit. Shortening twice changes nothing.
    """
    text = _UNSHOWABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(text: str) -> str:
    return shorten(text, MAX_REASON_CHARS)


def _label(text: str) -> str:
    return shorten(text, MAX_TITLE_CHARS)


def _shown_url(text: str) -> str:
    return shorten(text, MAX_URL_CHARS)


def _link(url: str | None) -> str | None:
    """A URL a server named (a redirect's target, a canonical link) as a URI: printable ASCII,
    non-ASCII and unsafe characters percent-encoded; None when longer than MAX_URL_CHARS."""
    if url is None:
        return None
    encoded = quote(url, safe=_URI_SAFE, errors="replace")
    return encoded if len(encoded) <= MAX_URL_CHARS else None


Reason = Annotated[str, AfterValidator(_reason)]
Label = Annotated[str, AfterValidator(_label)]
ShownURL = Annotated[str, AfterValidator(_shown_url)]
Link = Annotated[str | None, AfterValidator(_link)]


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


def _source_uri(value: str, info: ValidationInfo) -> str:
    """An http(s) URL (normalized by pydantic) that httpx can request, or an `s3://bucket/key`
    URI, at most MAX_URL_CHARS long (an S3 key at most 1,024 bytes). A record read back from
    the store (context `{"stored": True}`) is taken as it was accepted: a rule added for new
    requests must not make an older record unreadable."""
    stored = bool(info.context and info.context.get("stored"))
    value = value.strip()
    if not stored and len(value) > MAX_URL_CHARS:
        raise ValueError(f"the URL is {len(value):,} characters; the limit is {MAX_URL_CHARS:,}")
    if value.startswith("s3://"):
        match = _S3_URI.match(value)
        if match is None or ".." in match.group(2).split("/"):
            raise ValueError("an s3:// source must look like s3://bucket/key")
        if len(match.group(2).encode()) > MAX_S3_KEY_BYTES:
            raise ValueError(f"an S3 key is at most {MAX_S3_KEY_BYTES:,} bytes")
        return value
    try:
        url = str(_HTTP_URL.validate_python(value))
    except ValidationError as exc:
        reason = exc.errors(include_url=False)[0]["msg"]
        raise ValueError(f"not an http(s) URL or s3:// URI ({reason})") from None
    if stored:
        return url
    if len(url) > MAX_URL_CHARS:
        raise ValueError(
            f"the URL is {len(url):,} characters once encoded; the limit is {MAX_URL_CHARS:,}"
        )
    # What is stored is pydantic's spelling, which httpx may still not request (a host that
    # browsers encode and IDNA 2008 refuses, `http://☃.net/`): refused now, not as a failed
    # source later; the reason names the part as the caller wrote it, where it can.
    problem = unusable(url)
    if problem is not None:
        raise ValueError(f"not a URL that can be fetched: {unusable(value) or problem}")
    return url


_S3_URI = re.compile(
    r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/([^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+)$"
)
_HTTP_URL = TypeAdapter(AnyHttpUrl)

SourceURI = Annotated[str, AfterValidator(_source_uri)]


class SearchSource(Strict):
    """A web search: its top `limit` results are fetched like URLs, all at once."""

    search: Annotated[
        str,
        Field(min_length=2, max_length=400, description="The query."),
        AfterValidator(_no_controls),
    ]
    limit: Annotated[int, Field(ge=1, le=10)] = 5
    provider: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = None


class VectorSource(Strict):
    """A vector search: the `top_k` passages nearest to `vector` in `collection`."""

    vector: Annotated[
        str,
        Field(min_length=2, max_length=2_000, description="The query."),
        AfterValidator(_no_controls),
    ]
    collection: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
    top_k: Annotated[int, Field(ge=1, le=20)] = 5


def _source_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "uri"
    if isinstance(value, SearchSource) or (isinstance(value, dict) and "search" in value):
        return "search"
    if isinstance(value, VectorSource) or (isinstance(value, dict) and "vector" in value):
        return "vector"
    return None


SourceSpec = Annotated[
    Annotated[SourceURI, Tag("uri")]
    | Annotated[SearchSource, Tag("search")]
    | Annotated[VectorSource, Tag("vector")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message='a source is a URL string, {"search": ...} or {"vector": ...}',
    ),
]


def slots(spec: SourceSpec) -> int:
    """How many documents a source can yield; each gets its own index, known in advance."""
    if isinstance(spec, SearchSource):
        return spec.limit
    if isinstance(spec, VectorSource):
        return spec.top_k
    return 1


def plan(sources: Sequence[SourceSpec]) -> list[tuple[int, SourceSpec]]:
    """Each source with the first index of its block of slots."""
    planned: list[tuple[int, SourceSpec]] = []
    first = 0
    for spec in sources:
        planned.append((first, spec))
        first += slots(spec)
    return planned


class ResearchRequest(Strict):
    """What a caller asks for: a question and the sources to answer it from.

    A source is an http(s) URL, an `s3://` document, a web search or a vector search; all are
    retrieved at once.
    """

    question: Annotated[str, Field(min_length=3, max_length=MAX_QUESTION_CHARS)]
    sources: Annotated[list[SourceSpec], Field(min_length=1, max_length=MAX_SOURCES)]
    max_sources: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_DOCUMENTS,
            description="Summarize at most this many of the documents retrieved: the first "
            "usable ones, taking each source's results in turn (a search's first result, then "
            "the next source's first, ...); the rest are listed as skipped. Every source is "
            "still fetched at once, so a failed one leaves room for another.",
        ),
    ] = None

    depth: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_DEPTH,
            description="Deep research: how many levels of follow-up questions (1: the "
            "sources given, no follow-ups). Each level asks `breadth` follow-up questions of "
            "every question of the level before, searches the web for each, and reads what it "
            "finds; one report covers every level.",
        ),
    ] = 1
    breadth: Annotated[
        int,
        Field(
            ge=1, le=MAX_BREADTH, description="Follow-up questions per question (deep research)."
        ),
    ] = 3
    max_cost_usd: Annotated[
        float | None,
        Field(
            gt=0,
            le=1_000,
            description="Deep research stops asking follow-up questions once the job's model "
            "cost reaches this (with a priced model).",
        ),
    ] = None
    max_seconds: Annotated[
        int | None,
        Field(
            ge=10,
            le=3_600,
            description="Deep research starts no level after this many seconds from the job's "
            "start; the report is written from what was found.",
        ),
    ] = None

    @field_validator("question")
    @classmethod
    def _question_has_words(cls, value: str, info: ValidationInfo) -> str:
        value = " ".join(_no_controls(value, info).split())
        if len(value) < 3:
            raise ValueError("the question needs at least a few words")
        return value

    @field_validator("sources")
    @classmethod
    def _unique_and_bounded(cls, value: list[SourceSpec]) -> list[SourceSpec]:
        seen: set[str] = set()
        unique: list[SourceSpec] = []
        for spec in value:
            key = same_page(spec) if isinstance(spec, str) else spec.model_dump_json()
            if key not in seen:
                seen.add(key)
                unique.append(spec)
        total = sum(slots(s) for s in unique)
        if total > MAX_DOCUMENTS:
            raise ValueError(
                f"these sources could yield {total} documents; the limit is {MAX_DOCUMENTS}"
            )
        return unique


class JobRecord(Strict):
    """`keys.request`: the validated request, its owner and when it arrived."""

    v: Literal[1] = 1
    job_id: JobId
    owner: str
    created_at: datetime
    request: ResearchRequest
    batch_id: BatchId | None = None
    batch_n: int | None = None
    """The job's number in its batch (records stored before the batch ledger lack it)."""


class JobCancelled(Strict):
    """`keys.cancelled`: the owner stopped the job; no further model calls."""

    v: Literal[1] = 1
    job_id: JobId
    at: datetime


class BatchRecord(Strict):
    """`keys.batch`: who submitted a batch, when, and how many jobs it has."""

    v: Literal[1] = 1
    batch_id: BatchId
    owner: str
    created_at: datetime
    size: int
    chunk_size: int | None = None
    """Requests per `keys.batch_chunk`; None: a batch stored before chunks and the ledger,
    with one `keys.batch_request` per job."""


class BatchChunk(Strict):
    """`keys.batch_chunk`: requests `first` .. `first + len(requests) - 1` of a batch."""

    v: Literal[1] = 1
    first: int
    requests: list[ResearchRequest]


BatchJobState = Literal["pending", "running", "done", "failed", "cancelled"]
LedgerState = Literal["running", "done", "failed", "cancelled"]


class BatchLedger(Strict):
    """`keys.batch_ledger`: the state of each started job of one shard of a batch, by its
    number (as a string, as JSON keys are). Many writers: updated by compare-and-swap."""

    v: Literal[1] = 1
    states: dict[str, LedgerState] = Field(default_factory=dict)


class JobSummary(Strict):
    """`keys.owner_job`: one line of "my jobs"."""

    v: Literal[1] = 1
    job_id: JobId
    question: str
    created_at: datetime
    batch_id: BatchId | None = None


SourceState = Literal["ok", "cached", "failed", "skipped"]
SourceKind = Literal["url", "document", "search", "vector"]


class SourceOutcome(Strict):
    """What happened to one source; a failure carries a reason a user can act on.

    `state` is `ok` (retrieved now), `cached` (served from the page cache), `failed`, or
    `skipped` (usable, but past the job's `max_sources`).
    Results of a search or a vector query are sources of their own, with `via` naming the query.
    """

    index: int
    url: ShownURL
    state: SourceState
    kind: SourceKind = "url"
    via: ShownURL | None = None
    reason: Reason | None = None
    final_url: Link = None
    canonical_url: Link = None
    title: Label | None = None
    content_type: Label | None = None
    bytes: int = 0
    chars: int = 0
    fetch_ms: int = 0

    @property
    def usable(self) -> bool:
        """The source produced text to summarize (and is among those the job summarizes)."""
        return self.state in ("ok", "cached")


def within_limit(
    sources: Sequence[SourceSpec], outcomes: Sequence[SourceOutcome], max_sources: int | None
) -> list[SourceOutcome]:
    """`outcomes` with the usable ones past `max_sources` marked skipped. Sources take turns:
    each one's first usable document, then each one's second, ..., so one search's ten results
    do not crowd out the URLs and the other searches beside it."""
    if max_sources is None:
        return list(outcomes)
    block: dict[int, int] = {}  # index -> the number of the source whose results it is
    for number, (first, spec) in enumerate(plan(sources)):
        block.update(dict.fromkeys(range(first, first + slots(spec)), number))
    turn: dict[int, int] = {}
    ranked: list[tuple[int, int, int]] = []
    for outcome in sorted(outcomes, key=lambda o: o.index):
        if outcome.usable:
            number = block.get(outcome.index, len(sources))
            ranked.append((turn.get(number, 0), number, outcome.index))
            turn[number] = turn.get(number, 0) + 1
    kept = {index for _, _, index in sorted(ranked)[:max_sources]}
    reason = f"not summarized: the job asked for at most {max_sources} sources"
    return [
        o
        if not o.usable or o.index in kept
        else o.model_copy(update={"state": "skipped", "reason": reason})
        for o in outcomes
    ]


def source_number(index: int) -> int:
    """A source as a person reads it: numbered from 1, as the request and the report list
    them (indexes in keys, messages and `index` fields count from 0)."""
    return index + 1


class SourceRecord(Strict):
    """`keys.source`: one source's outcome and, when usable, its text."""

    v: Literal[1] = 1
    job_id: JobId
    outcome: SourceOutcome
    text: str = ""
    fetched_at: datetime


class Hit(Strict):
    """One result of a search or vector query, as stored with its expansion."""

    url: str
    title: str | None = None
    text: str | None = None  # a vector passage's text (a web result is fetched instead)
    score: float | None = None


class Expansion(Strict):
    """`keys.expansion`: what the k-th source (a search) turned into.

    Stored once, so a redelivered research message fetches the same results, not new ones.
    """

    v: Literal[1] = 1
    job_id: JobId
    position: int
    first_index: int
    hits: list[Hit]


class Retrieval(Strict):
    """`keys.retrieval`: every source's outcome, written once retrieval is over.

    Status reads this one small object instead of every (large) source record.
    """

    v: Literal[1] = 1
    job_id: JobId
    sources: list[SourceOutcome]
    started_at: datetime
    finished_at: datetime
    level: Annotated[int, Field(ge=1)] = 1  # a deep job's level (`keys.retrieval`)

    @property
    def usable(self) -> list[SourceOutcome]:
        """Sources that produced text, in request order."""
        return [s for s in self.sources if s.usable]


class SummaryRecord(Strict):
    """`keys.summary`: the summary of source i, or why there is none."""

    v: Literal[1] = 1
    job_id: JobId
    index: int
    state: SourceState
    text: str = ""
    reason: Reason | None = None
    model: str
    usage: Usage = Usage()
    cached: bool = False  # identical content was summarized before: no model call this time
    started_at: datetime
    finished_at: datetime


class CombineClaim(Strict):
    """`keys.combine_claim`: which summarize delivery won the fan-in (of a level), and when."""

    v: Literal[1] = 1
    job_id: JobId
    owner: int
    at: datetime
    level: Annotated[int, Field(ge=1)] = 1


class FollowUp(Strict):
    """One follow-up question of a deep job: a node of its tree, answered by a web search."""

    node: str  # "2.3": level 2, the third question of the level ("1" is the job's own)
    parent: str  # the node whose findings raised it
    question: Annotated[str, Field(min_length=3, max_length=MAX_QUESTION_CHARS)]
    query: Annotated[str, Field(min_length=2, max_length=400)]  # what is searched for
    limit: Annotated[int, Field(ge=1, le=10)]  # results read


class LevelPlan(Strict):
    """`keys.plan`: the follow-up questions of a deep job's level, asked once by the combine
    of the level before; `cut` says why the level asks fewer than the request's breadth."""

    v: Literal[1] = 1
    job_id: JobId
    level: Annotated[int, Field(ge=2)]
    follow_ups: list[FollowUp]
    spent_usd: float = 0.0  # the model cost of the levels before, asking these included
    usage: Usage = Usage()  # what asking these questions of a model cost
    cut: Reason | None = None
    at: datetime


class TreeNode(Strict):
    """A question of a deep job's tree, and the sources that answered it (by index)."""

    node: str
    parent: str | None
    question: str
    level: int
    sources: list[int]


class CachedText(Strict):
    """`keys.cached_text`: a model's output for exactly this input, model and prompt."""

    v: Literal[1] = 1
    model: str
    text: str
    usage: Usage
    created_at: datetime


class Citation(Strict):
    """A source as the report cites it: `[n]`, where `n` is `source_number(index)`."""

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
    """`keys.report`: the answer, its citations and what could not be used."""

    v: Literal[1] = 1
    job_id: JobId
    question: str
    markdown: str
    citations: list[Citation]
    missing: list[SourceOutcome]
    model: str
    usage: Usage = Usage()
    stage_usage: dict[str, Usage] = Field(default_factory=dict)  # "summarize", "combine"
    created_at: datetime
    # What the reader must know about the answer: it cites no source, or citations of
    # sources the model was not given were removed. Each is also a note in `markdown`.
    warnings: list[str] = Field(default_factory=list)
    tree: list[TreeNode] | None = None  # a deep job's questions, level by level


FailedStage = Literal["research", "summarize", "combine", "deadletter"]


class JobFailure(Strict):
    """`keys.failed`: why a job ended without a report."""

    v: Literal[1] = 1
    job_id: JobId
    stage: FailedStage
    reason: Reason
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
    "level_started",  # a deep job asks the follow-up questions of its next level
    "report_text",  # the answer's text so far, as a streaming combine model writes it
    "report_ready",
    "job_failed",
    "job_cancelled",
    "job_redriven",  # an operator re-sent the job's dead messages; its failure was lifted
    "model_retry",  # a model call failed in a way that may pass (429, 5xx, timeout)
]


class ModelRetry(Strict):
    """A model call that failed in a way that may pass, and when it is tried again."""

    provider: str  # "openai"
    model: str  # "gpt-4o-mini"
    status: int | None = None  # the HTTP status; None for a timeout or a dropped connection
    throttled: bool = False  # the provider said slow down (429, 529, Bedrock's throttling)
    retry_after_s: float | None = None  # the wait the provider asked for (Retry-After)
    retry_in_s: float | None = None  # until the next call; None: the queue brings it back later
    attempt: int  # the call that failed, counted from 1 within one delivery
    error: Reason  # the error, in the provider's words where it gave any

    @property
    def name(self) -> str:
        """`provider:model`, as records and prices name a model."""
        return f"{self.provider}:{self.model}"


class Event(Strict):
    """`keys.event`: one progress event, never rewritten (several sources' events of one
    stage may be stored as one `EventGroup`; readers get them as events)."""

    v: Literal[1] = 1
    job_id: JobId
    kind: EventKind
    at: datetime
    index: int | None = None
    detail: Reason | None = None
    retry: ModelRetry | None = None  # a `model_retry` event's particulars
    # A `report_text` event's text, added to the draft at `offset` (0: the draft starts over,
    # as after a retried model call); the report at `report_ready` replaces the draft.
    text: str | None = None
    offset: Annotated[int, Field(ge=0)] | None = None


class EventItem(Strict):
    """One source's event in an `EventGroup`."""

    index: int
    at: datetime
    detail: Reason | None = None


class EventGroup(Strict):
    """`keys.event` of several sources' events of one kind, written as one object (a burst
    of them, `brief.eventbatch`); its key names every source."""

    v: Literal[1] = 1
    job_id: JobId
    kind: EventKind
    at: datetime  # when it was written
    items: Annotated[list[EventItem], Field(min_length=2)]

    def each(self) -> list[Event]:
        """One event per source, as if each had been written on its own."""
        return [
            Event(job_id=self.job_id, kind=self.kind, at=i.at, index=i.index, detail=i.detail)
            for i in self.items
        ]


class ModelWait(ModelRetry):
    """What a source (or the combine) is waiting for: its latest `model_retry` event."""

    at: datetime
    detail: Reason


class SourceStatus(SourceOutcome):
    """A source as the job's status shows it: its outcome, and any wait for the model."""

    waiting: ModelWait | None = None


FailingStep = Literal["summarize", "combine"]


class StepError(Strict):
    """`keys.error`: why one delivery of a step failed and went
    back to its queue. The dead-letter stage reads them to say what kept going wrong."""

    v: Literal[1] = 1
    job_id: JobId
    step: FailingStep
    index: int | None = None
    model: str | None = None  # `provider:model`, when a model call failed
    answers: dict[str, int]  # what went wrong ("answered 429 Too Many Requests"), how often
    error: Reason  # the error that ended the delivery
    first_at: datetime  # the delivery's first failed call
    at: datetime


JobState = Literal[
    "queued", "retrieving", "summarizing", "combining", "done", "failed", "cancelled"
]
TERMINAL_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


class JobView(Strict):
    """A job's status as the API shows it, derived from the keys present in S3."""

    job_id: JobId
    state: JobState
    question: str
    created_at: datetime
    sources: list[SourceStatus]
    summaries_done: int
    summaries_expected: int | None
    reason: Reason | None = None
    waiting: ModelWait | None = None  # the combine's wait for the model, while combining
    timings: StageTimings
    usage: Usage | None = None  # tokens and cost, once the report is written
    stage_usage: dict[str, Usage] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)  # the report's, once it is written
    tree: list[TreeNode] | None = None  # a deep job's questions so far, level by level


class BatchJob(Strict):
    """One job of a batch: its number in the batch (from 0), its id and its state (`running`
    covers queued to combining; `GET /jobs/{id}` has the detail)."""

    n: int
    job_id: JobId
    state: BatchJobState


class BatchView(Strict):
    """A batch's progress: how many of its jobs are in each state, and one page of its jobs
    (when there are more, pass `cursor` as `after` for the next)."""

    batch_id: BatchId
    created_at: datetime
    size: int
    counts: dict[str, int]
    jobs: list[BatchJob]
    cursor: int | None = None


DeadQueue = QueueRole | Literal["unknown"]
MAX_DEAD_BODY_CHARS = 64 * 1024
"""A dead body is kept whole up to this; a valid message is a few hundred bytes."""


class DeadMessage(Strict):
    """`keys.dead`: a message that exhausted its retries.

    The dead-letter function drains the DLQs (that is how a job learns it failed), so this
    copy is what an operator reads and redrives once the cause is fixed.
    """

    v: Literal[1] = 1
    message_id: str
    queue: DeadQueue  # the work queue it died on, where a redrive sends it back
    dead_letter_queue: str  # the DLQ's ARN
    body: str  # cut at MAX_DEAD_BODY_CHARS
    body_chars: int  # the whole body's length: more than len(body) when it was cut
    receive_count: int | None = None
    sent_at: datetime | None = None  # first sent to its work queue
    died_at: datetime  # reached the dead-letter function
    job_id: JobId | None = None
    reason: str

    @property
    def truncated(self) -> bool:
        """Whether the body was cut (such a message cannot be redriven as it was)."""
        return self.body_chars > len(self.body)
