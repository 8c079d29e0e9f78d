"""The ports the core depends on; adapters (S3, SQS, httpx, models) implement them.

Services receive these and never build an adapter or read the environment, so a test can
hand them in-memory fakes and an `httpx.MockTransport`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from brief.messages import QueueRole as QueueRole  # the TaskQueue's roles
from brief.models import ModelRetry, Usage


class BlobStore(Protocol):
    """Objects by key; written once, read many times (caches alone may `replace`)."""

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        """Create `key` if it does not exist; False (not an error) when it already did."""
        ...

    async def replace(
        self, key: str, body: bytes, *, content_type: str = "application/json"
    ) -> None:
        """Write `key` whether or not it exists (last writer wins): for cache entries only,
        never for a job's write-once records."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def get_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and its ETag (for `swap`), or None when there is no such key."""
        ...

    async def swap(
        self, key: str, body: bytes, *, etag: str | None, content_type: str = "application/json"
    ) -> bool:
        """Write `key` only if it is still the version `etag` names (None: only if it does not
        exist yet); False when another writer got there first. For objects many writers
        update (a batch's ledger): read, change, swap, and on False read again."""
        ...

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        """Every key under `prefix`, sorted, optionally only those after `after`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key` if it exists (no error when it does not): for index entries only,
        never for a job's records."""
        ...


class TaskQueue(Protocol):
    """Send typed messages to the pipeline's queues."""

    async def send(self, role: QueueRole, messages: Sequence[BaseModel]) -> None:
        """Send all `messages` to the queue that plays `role`; raises if any is not sent."""
        ...


class RecordReleaser(Protocol):
    """Bring failed SQS records back sooner than the queue's visibility timeout would."""

    async def release(self, source_arn: str, visibility: Sequence[tuple[str, int]]) -> None:
        """Make each (receipt handle, seconds) record of that queue visible after its seconds."""
        ...


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A response body that arrived whole, within the size and time limits."""

    url: str
    final_url: str
    content_type: str | None
    body: bytes
    elapsed_ms: int
    cached: bool = False  # served from the page cache (revalidated, or fresh)


class Fetcher(Protocol):
    """Fetch one URL; raises SourceError (with a user-facing reason) when it cannot."""

    async def fetch(self, url: str) -> FetchedPage: ...

    async def settle(self) -> None:
        """Finish what a fetch left running (cache writes) before the invocation ends."""
        ...


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result of a web search: a page to fetch."""

    url: str
    title: str | None = None
    snippet: str | None = None


class SearchProvider(Protocol):
    """A web search API; raises SourceError with a user-facing reason when it cannot answer."""

    @property
    def name(self) -> str:
        """The provider's name, as a request selects it (e.g. "searxng")."""
        ...

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """At most `limit` results, best first."""
        ...


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage a vector index returned: already text, nothing to fetch."""

    id: str
    text: str
    score: float
    title: str | None = None
    url: str | None = None


class VectorIndex(Protocol):
    """A vector search endpoint; raises SourceError with a user-facing reason on failure."""

    async def query(self, text: str, *, collection: str, top_k: int) -> list[Passage]:
        """The `top_k` passages nearest to `text` in `collection`, best first."""
        ...


class DocumentStore(Protocol):
    """Documents in object storage (`s3://bucket/key`), limited to configured places."""

    async def read(self, uri: str) -> FetchedPage:
        """The document's bytes and content type; SourceError if outside the allowed places,
        missing, or too large."""
        ...


@dataclass(frozen=True, slots=True)
class SourceText:
    """A usable source as a summarizer sees it: its number (`source_number` of its index,
    the `[n]` it is cited by), title and text."""

    n: int
    title: str | None
    url: str
    text: str


OnModelRetry = Callable[[ModelRetry], Awaitable[None]]
"""Told of every model call that failed in a way that may pass (the job's stage makes it an
event and keeps the last one); it runs while the retry waits."""

OnText = Callable[[str], Awaitable[None]]
"""Told of the answer's text so far as a streaming model writes it (the whole text each
time; a retry starts again from a shorter text). The report written at the end is the
answer; this is its draft, for readers watching the job."""


@dataclass(frozen=True, slots=True)
class ModelText:
    """A model's answer and what producing it cost."""

    text: str
    usage: Usage = field(default_factory=Usage)


class Summarizer(Protocol):
    """A model: summarizes one document, and combines summaries into a cited answer."""

    @property
    def name(self) -> str:
        """Names model and prompt in records and cache keys; changes when the output would."""
        ...

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        """The parts of `source` that bear on `question`, as prose."""
        ...

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        """A Markdown answer whose claims cite summaries by `[n]`; the combine stage keeps
        only the `[n]` of summaries it gave, and says so when that leaves none. A model that
        streams tells `on_text` of the answer as it writes it."""
        ...
