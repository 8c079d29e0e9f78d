"""Queue messages: versioned, strict, and naming what they are about by key.

A message names a job and a source index; the data lives in S3. What the sender has in hand
and the receiver would read next (a source's text, the summaries a fan-in wrote) may ride
along too when it is small (`INLINE_BYTES`), so the receiver skips the read: it is stored
in S3 all the same, and a message without it reads it. SQS bills a message by 64 KiB, so a
message with what rides along stays within one. `extra="forbid"` and the literal version
make an old or foreign message fail loudly (its own record only) instead of being
half-understood.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from brief.errors import InvalidMessage
from brief.ids import BatchId, JobId
from brief.models import MAX_DEPTH, SourceRecord, SummaryRecord
from brief.models import MAX_QUESTION_CHARS as MAX_QUESTION_CHARS  # re-exported: a limit
from brief.models import QUEUE_ROLES as QUEUE_ROLES  # re-exported: messages name the queues
from brief.models import QueueRole as QueueRole

INLINE_BYTES = 48 * 1024
"""The most a message carries of what the receiver would otherwise read (its JSON): with the
question and the rest, a message stays within SQS's 64 KiB billing unit."""


def inline_size(record: BaseModel) -> int:
    """What `record` adds to a message's JSON, in bytes."""
    return len(record.model_dump_json(exclude_none=True).encode())


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1


class ResearchTask(_Message):
    """Retrieve every source of a stored job (intake queue)."""

    kind: Literal["research"] = "research"
    job_id: JobId
    # A deep job's level to retrieve (None: the first, as every other job has).
    level: Annotated[int, Field(ge=2, le=MAX_DEPTH)] | None = None


class SummarizeTask(_Message):
    """Summarize source `index`; `expected` is how many summaries complete the job.

    `input_digest` (`brief.jobstore.digest` of the question, the source's title and text)
    lets the summary cache be read in the same round as the source itself; the stage checks
    it against the source it reads, so a wrong or missing digest costs a round, never a
    wrong summary. `question` is the job's (at most `MAX_QUESTION_CHARS`), so the stage need
    not read the request; a message without it (sent before it was added) reads it.
    """

    kind: Literal["summarize"] = "summarize"
    job_id: JobId
    index: Annotated[int, Field(ge=0)]
    expected: Annotated[int, Field(ge=1)]
    input_digest: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    question: Annotated[str | None, Field(max_length=MAX_QUESTION_CHARS)] = None
    # The source's record as research stored it, when it fits (`INLINE_BYTES`): the stage
    # need not read it.
    source: SourceRecord | None = None
    # A deep job's level past the first, and the first index of its sources (those below
    # are the levels before's, whose summaries the level's fan-in does not count); None
    # for the first level (every other job's), so its messages stay as they were.
    level: Annotated[int, Field(ge=2, le=MAX_DEPTH)] | None = None
    first: Annotated[int, Field(ge=1)] | None = None


class CombineTask(_Message):
    """Combine every summary of a job into its report.

    `indexes` are the summaries the fan-in saw, so the combine reads them in its first round
    of reads; it still reads any usable source's summary the list lacks. `summaries` are
    those the fan-in's own batch wrote, when they fit (`INLINE_BYTES`): they are not read.
    """

    kind: Literal["combine"] = "combine"
    job_id: JobId
    indexes: Annotated[tuple[Annotated[int, Field(ge=0)], ...], Field(max_length=10_000)] | None = (
        None
    )
    summaries: tuple[SummaryRecord, ...] | None = None
    level: Annotated[int, Field(ge=2, le=MAX_DEPTH)] | None = None  # a deep job's, past 1


class SubmitTask(_Message):
    """Create job `n` of a stored batch, then research it (intake queue, batch runs)."""

    kind: Literal["submit"] = "submit"
    batch_id: BatchId
    n: Annotated[int, Field(ge=0)]


class ExpandTask(_Message):
    """Queue the submit messages of jobs `first` .. `first + count - 1` of a stored batch
    (intake queue): a batch is accepted with one of these per chunk, not one message a job."""

    kind: Literal["expand"] = "expand"
    batch_id: BatchId
    first: Annotated[int, Field(ge=0)]
    count: Annotated[int, Field(ge=1, le=1_000)]


T = TypeVar("T", bound=_Message)

AnyTask = ResearchTask | SubmitTask | ExpandTask | SummarizeTask | CombineTask
Task = Annotated[AnyTask, Field(discriminator="kind")]
_TASK = TypeAdapter[AnyTask](Task)


CARRIES: dict[QueueRole, tuple[type[AnyTask], ...]] = {
    "intake": (ResearchTask, SubmitTask, ExpandTask),
    "summarize": (SummarizeTask,),
    "combine": (CombineTask,),
}
"""The messages each work queue carries."""


def parse_task(body: str, expected: type[T]) -> T:
    """Parse a queue body as `expected`, raising InvalidMessage with a readable reason."""
    task = parse_message(body)
    if not isinstance(task, expected):
        raise InvalidMessage(f"expected a {expected.__name__}, got {type(task).__name__}")
    return task


def tasks_among(bodies: Iterable[str], expected: type[T]) -> list[T]:
    """The bodies that parse as `expected` (a batch's others fail on their own record)."""
    found: list[T] = []
    for body in bodies:
        try:
            found.append(parse_task(body, expected))
        except InvalidMessage:
            continue
    return found


IntakeTask = ResearchTask | SubmitTask | ExpandTask


def parse_intake(body: str) -> IntakeTask:
    """Parse an intake-queue body: a stored job to research, a batch's job to create, or a
    chunk of a batch to queue."""
    task = parse_message(body)
    check_queue(task, "intake")
    assert isinstance(task, ResearchTask | SubmitTask | ExpandTask)  # what `intake` carries
    return task


def check_queue(task: AnyTask, queue: QueueRole) -> None:
    """InvalidMessage (as `parse_task` and `parse_intake` say it) if `queue` does not carry
    `task`: its consumer would reject it."""
    carried = CARRIES[queue]
    if not isinstance(task, carried):
        names = " or ".join(t.__name__ for t in carried)
        raise InvalidMessage(f"expected a {names}, got {type(task).__name__}")


def queue_of(kind: str) -> QueueRole | None:
    """The queue that carries messages of `kind` (None: no Brief message has that kind)."""
    for queue, carried in CARRIES.items():
        if any(t.model_fields["kind"].default == kind for t in carried):
            return queue
    return None


def parse_message(body: str) -> AnyTask:
    """Parse a body as any Brief message (InvalidMessage with a readable reason if it is not
    one)."""
    try:
        # What rides along was read back from or written to the store: taken as stored.
        return _TASK.validate_json(body, context={"stored": True})
    except ValidationError as exc:
        raise InvalidMessage(f"not a valid Brief message: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"
