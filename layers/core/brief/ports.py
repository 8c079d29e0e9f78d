"""The ports the core depends on; adapters (S3, SQS, httpx, models) implement them.

Services receive these and never build an adapter or read the environment, so a test can
hand them in-memory fakes and an `httpx.MockTransport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

QueueRole = Literal["intake", "summarize", "combine"]


class BlobStore(Protocol):
    """Objects by key; written once, read many times."""

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        """Create `key` if it does not exist; False (not an error) when it already did."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        """Every key under `prefix`, sorted, optionally only those after `after`."""
        ...


class TaskQueue(Protocol):
    """Send typed messages to the pipeline's queues."""

    async def send(self, role: QueueRole, messages: Sequence[BaseModel]) -> None:
        """Send all `messages` to the queue that plays `role`; raises if any is not sent."""
        ...


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A response body that arrived whole, within the size and time limits."""

    url: str
    final_url: str
    content_type: str | None
    body: bytes
    elapsed_ms: int


class Fetcher(Protocol):
    """Fetch one URL; raises SourceError (with a user-facing reason) when it cannot."""

    async def fetch(self, url: str) -> FetchedPage: ...


@dataclass(frozen=True, slots=True)
class SourceText:
    """A usable source as a summarizer sees it: its citation number, title and text."""

    n: int
    title: str | None
    url: str
    text: str


class Summarizer(Protocol):
    """A model: summarizes one document, and combines summaries into a cited answer."""

    @property
    def name(self) -> str:
        """Identifies the model in stored records (and later in cache keys)."""
        ...

    async def summarize(self, question: str, source: SourceText) -> str:
        """The parts of `source` that bear on `question`, as prose."""
        ...

    async def combine(self, question: str, summaries: Sequence[SourceText]) -> str:
        """A Markdown answer whose claims cite summaries by `[n]`."""
        ...
