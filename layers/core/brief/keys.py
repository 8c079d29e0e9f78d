"""Brief's S3 layout: every key and prefix in the bucket, spelled here and nowhere else.

    jobs/{job}/request.json                  JobRecord: the request, its owner, when it came
    jobs/{job}/cancelled.json                JobCancelled
    jobs/{job}/sources/{i}.json              SourceRecord: source i's outcome and text
    jobs/{job}/expansions/{k}.json           Expansion: what the k-th source (a search) found
    jobs/{job}/retrieval.json                Retrieval: retrieval is over
    jobs/{job}/summaries/{i}.json            SummaryRecord of source i
    jobs/{job}/combine.claim                 CombineClaim: the delivery that sends the combine
    jobs/{job}/combine.sent                  (empty) the combine message went out
    jobs/{job}/levels/{L}/plan.json          LevelPlan: a deep job's follow-up searches of
                                             level L >= 2 (its retrieval.json, combine.claim
                                             and combine.sent sit beside it)
    jobs/{job}/report.json, report.md        Report (the commit point), and as Markdown
    jobs/{job}/failed.json                   JobFailure: why the job ended without a report
    jobs/{job}/events/{µs}-{kind}[-{i}].json Event; the key is the event's cursor
    jobs/{job}/errors/{step}[-{i}]/{µs}.json StepError: why one delivery of a step failed
    owners/{sha(owner)}/jobs/{10^16-µs}-{job}.json  JobSummary, newest first
    batches/{batch}/batch.json               BatchRecord
    batches/{batch}/chunks/{c}.json          BatchChunk: the requests of jobs c*size ..
    batches/{batch}/ledger/{k}.json          BatchLedger: the state of each started job n
                                             with n % 4 == k (compare-and-swap)
    batches/{batch}/requests/{n}.json        ResearchRequest of job n (batches stored before
                                             chunks; read, never written)
    cache/texts/{sha}.json                   CachedText: a model output, by its inputs
    cache/pages/{sha(url)}                   a fetched page: a line of CachedPage JSON, then
                                             its body (`brief.pagecache`)
    dead/{queue}/{message}.json              DeadMessage: kept for an operator
    open/{µs}-{job}                          (empty) a job the sweeper watches
    uploads/{token}/{name}                   a document a user uploaded

Every object but the caches and a batch's ledger is written once (a conditional put), so a
job's state is which of its keys exist (`brief.jobstore.state`). A time in a key is
microseconds since the epoch, zero-padded to 16 digits, so a listing returns keys in time
order and a key is a cursor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from brief.ids import ID_PATTERN, owner_key

# -- a job's objects, by their name under `job(job_id)` (what the state logic reads) ----------

REQUEST = "request.json"
CANCELLED = "cancelled.json"
RETRIEVAL = "retrieval.json"
COMBINE_CLAIM = "combine.claim"
COMBINE_SENT = "combine.sent"
REPORT = "report.json"
REPORT_MARKDOWN = "report.md"
FAILED = "failed.json"
SOURCES = "sources/"
EXPANSIONS = "expansions/"
SUMMARIES = "summaries/"
EVENTS = "events/"
ERRORS = "errors/"
LEVELS = "levels/"
PLAN = "plan.json"


def level(number: int) -> str:
    """Where a deep job's level `number` keeps its retrieval, claim and plan (under `job`):
    level 1, the request's own sources, keeps them at the job's top."""
    return "" if number <= 1 else f"{LEVELS}{number}/"


def level_of(name: str) -> tuple[int, str]:
    """The level a name under `job` belongs to, and the name within it (`levels/2/plan.json`:
    (2, "plan.json")); a name outside `levels/` is level 1's."""
    if name.startswith(LEVELS):
        number, _, rest = name.removeprefix(LEVELS).partition("/")
        if number.isdigit():
            return int(number), rest
    return 1, name


def deepest_level(names: Iterable[str]) -> tuple[int, set[str]]:
    """The deepest level a job's names (under `job`) reach, and its names within that level
    (level 1's are the job's top-level names)."""
    listed = [level_of(name) for name in names]
    deepest = max((number for number, _ in listed), default=1)
    return deepest, {name for number, name in listed if number == deepest}


def job(job_id: str) -> str:
    """Every key of a job starts with this."""
    return f"jobs/{job_id}/"


def request(job_id: str) -> str:
    """The job's request: the job exists once this does."""
    return job(job_id) + REQUEST


def cancelled(job_id: str) -> str:
    """The job's cancel marker."""
    return job(job_id) + CANCELLED


def retrieval(job_id: str, number: int = 1) -> str:
    """Every source's outcome (of level `number`), once retrieval is over."""
    return job(job_id) + level(number) + RETRIEVAL


def combine_claim(job_id: str, number: int = 1) -> str:
    """The fan-in's claim (of level `number`): whoever writes it sends the combine."""
    return job(job_id) + level(number) + COMBINE_CLAIM


def combine_sent(job_id: str, number: int = 1) -> str:
    """The marker that the combine message (of level `number`) went out."""
    return job(job_id) + level(number) + COMBINE_SENT


def plan(job_id: str, number: int) -> str:
    """A deep job's follow-up searches of level `number` (2 or more)."""
    return job(job_id) + level(number) + PLAN


def report(job_id: str) -> str:
    """The report (the job's commit point)."""
    return job(job_id) + REPORT


def report_markdown(job_id: str) -> str:
    """The report as Markdown, always written from `report`."""
    return job(job_id) + REPORT_MARKDOWN


def failed(job_id: str) -> str:
    """Why the job failed."""
    return job(job_id) + FAILED


def sources(job_id: str) -> str:
    """The prefix of the job's stored sources."""
    return job(job_id) + SOURCES


def source(job_id: str, index: int) -> str:
    """Source `index`'s outcome and text."""
    return f"{sources(job_id)}{index}.json"


def expansions(job_id: str) -> str:
    """The prefix of the job's search results."""
    return job(job_id) + EXPANSIONS


def expansion(job_id: str, position: int) -> str:
    """What the search at `position` of the request found."""
    return f"{expansions(job_id)}{position}.json"


def summaries(job_id: str) -> str:
    """The prefix of the job's summaries."""
    return job(job_id) + SUMMARIES


def summary_name(index: int) -> str:
    """Source `index`'s summary, by its name under `job` (as the state logic sees it)."""
    return f"{SUMMARIES}{index}.json"


def summary(job_id: str, index: int) -> str:
    """Source `index`'s summary."""
    return job(job_id) + summary_name(index)


_INDEX = re.compile(r"/(\d+)\.json$")


def summary_index(key: str) -> int | None:
    """The source index a summary's key names (None: not a summary's key)."""
    match = _INDEX.search(key)
    return int(match.group(1)) if match else None


def events(job_id: str) -> str:
    """The prefix of the job's events; a key without it is the event's cursor."""
    return job(job_id) + EVENTS


EVENT_CURSOR = re.compile(r"(\d{16})-([a-z_]+)(?:-(\d+(?:_\d+)*))?\.json")
"""An event's cursor: its key under `events(job)`, time (µs) first, so cursors sort as the
events happened. Per-source events written together (`brief.eventbatch`) name every source,
`_` between: `1717171717171717-summary_done-0_2_3.json`."""
_EVENT_KEY = re.compile(rf"/{EVENTS}{EVENT_CURSOR.pattern}$")


def event(job_id: str, at: datetime, kind: str, index: int | Sequence[int] | None = None) -> str:
    """A progress event's key: its time first, so a listing is the timeline; `index` is the
    source it is about, or the sources of events written as one."""
    if index is None:
        suffix = ""
    elif isinstance(index, int):
        suffix = f"-{index}"
    else:
        suffix = "-" + "_".join(str(i) for i in index)
    return f"{events(job_id)}{micros(at):016d}-{kind}{suffix}.json"


@dataclass(frozen=True)
class EventName:
    """What an event's key says without a read: when, what, and for which sources (`index`:
    the last of them, as "the latest step" names one)."""

    micros: int
    kind: str
    indexes: tuple[int, ...] = ()

    @property
    def index(self) -> int | None:
        """The source the event is about (the last named, for events written as one)."""
        return self.indexes[-1] if self.indexes else None


def event_name(key: str) -> EventName | None:
    """The time, kind and source indexes an event's key (or name under `job`) carries; None
    when `key` is not an event's."""
    match = _EVENT_KEY.search(key if key.startswith("/") else f"/{key}")
    if match is None:
        return None
    named = match.group(3)
    indexes = tuple(int(i) for i in named.split("_")) if named is not None else ()
    return EventName(micros=int(match.group(1)), kind=match.group(2), indexes=indexes)


def errors(job_id: str, step: str, index: int | None) -> str:
    """The prefix of why each delivery of a step (of source `index`, if any) failed."""
    suffix = f"-{index}" if index is not None else ""
    return f"{job(job_id)}{ERRORS}{step}{suffix}/"


def error(job_id: str, step: str, index: int | None, at: datetime) -> str:
    """Why one delivery of a step failed, by time."""
    return f"{errors(job_id, step, index)}{micros(at):016d}.json"


# -- owners, batches ---------------------------------------------------------------------

_NEWEST_FIRST = 10**16


def owner_jobs(owner: str) -> str:
    """The prefix of an owner's list of jobs."""
    return f"owners/{owner_key(owner)}/jobs/"


def owner_job(owner: str, created_at: datetime, job_id: str) -> str:
    """The job's entry in its owner's list: reversed time first, so a listing is newest first."""
    return f"{owner_jobs(owner)}{_NEWEST_FIRST - micros(created_at):016d}-{job_id}.json"


def batch(batch_id: str) -> str:
    """The batch's record."""
    return f"batches/{batch_id}/batch.json"


def batch_chunk(batch_id: str, chunk: int) -> str:
    """Chunk `chunk` of a batch's requests."""
    return f"batches/{batch_id}/chunks/{chunk}.json"


LEDGER_SHARDS = 4
"""A batch's ledger is this many objects: few to read (a status is 1 + 4 reads at any size),
enough that jobs ending at once seldom contend for one."""


def batch_ledger(batch_id: str, n: int) -> str:
    """The ledger shard that holds job `n`'s state."""
    return f"batches/{batch_id}/ledger/{n % LEDGER_SHARDS}.json"


def batch_request(batch_id: str, n: int) -> str:
    """Request `n` of a batch stored before chunks (read only)."""
    return f"batches/{batch_id}/requests/{n}.json"


# -- caches shared by every job ----------------------------------------------------------

PAGES = "cache/pages/"


def cached_text(digest: str) -> str:
    """A model output, by the digest of the model and its inputs."""
    return f"cache/texts/{digest}.json"


def cached_page(url_digest: str) -> str:
    """A page cache entry and its body, by the digest of its normalized URL (no `.json`: the
    object is not JSON, and entries of the earlier layout, `{digest}.json` beside
    `cache/bodies/`, are never read as this one)."""
    return f"{PAGES}{url_digest}"


# -- dead letters, the open-jobs index, uploads ------------------------------------------

DEAD = "dead/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def dead_queue(queue: str) -> str:
    """The prefix of the messages that died on `queue`."""
    return f"{DEAD}{queue}/"


def dead(queue: str, message_id: str) -> str:
    """Where a dead message is kept: by the queue it died on and its SQS message id."""
    return f"{dead_queue(queue)}{_UNSAFE.sub('_', message_id)[:128]}.json"


OPEN = "open/"
_OPEN_KEY = re.compile(rf"{OPEN}(\d{{16}})-({ID_PATTERN})")


def open_job(created_at: datetime, job_id: str) -> str:
    """The job's entry in the open-jobs index: its creation time first, so a listing is
    oldest first and an entry's age is known without a read."""
    return f"{OPEN}{micros(created_at):016d}-{job_id}"


def open_job_name(key: str) -> tuple[datetime, str] | None:
    """When the job of an open-jobs entry was created, and its id (None: not an entry)."""
    match = _OPEN_KEY.fullmatch(key)
    return (from_micros(int(match.group(1))), match.group(2)) if match else None


UPLOADS = "uploads/"
DOCUMENTS = "documents/"


def upload(token: str, name: str) -> str:
    """Where a user's upload goes: under a fresh token, so names never collide."""
    return f"{UPLOADS}{token}/{name}"


# -- time in keys ------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """Microseconds since the epoch: how every key that carries a time spells it."""
    return int(at.timestamp() * 1_000_000)


def from_micros(value: int) -> datetime:
    """The time a key's microseconds spell."""
    return _EPOCH + timedelta(microseconds=value)
