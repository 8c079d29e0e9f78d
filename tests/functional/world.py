"""A job's world in memory: fakes for S3 and SQS, pages behind an httpx MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue
from brief.deadletter import DeadLetter
from brief.egress import EgressPolicy
from brief.errors import StorageUnavailable
from brief.extractive import ExtractiveSummarizer
from brief.jobstore import JobStore
from brief.messages import CombineTask, ExpandTask, ResearchTask, SubmitTask, SummarizeTask
from brief.models import ResearchRequest, utcnow
from brief.pipeline import Combine, Intake, Research, Summarize
from brief.retrieval import FetchLimits, HttpFetcher
from brief.sources import Gatherer, SourceAdapters

HOST = "pages.test"

Route = Callable[[httpx.Request], Awaitable[httpx.Response]]


def page(title: str, *paragraphs: str) -> str:
    """A small HTML page with boilerplate around its article."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html><head><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/about'>About us</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Copyright footer text</footer></body></html>"
    )


class Clock:
    """A clock the test moves by hand (stages take it instead of reading the real time)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class World:
    """Everything a stage touches, in memory, plus a driver that plays the queues."""

    blobs: MemoryBlobStore
    queue: MemoryTaskQueue
    routes: dict[str, Route]
    fetched: list[str] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)
    timeout_s: float = 2.0
    max_bytes: int = 200_000

    @property
    def store(self) -> JobStore:
        return JobStore(self.blobs)

    def fetcher(self) -> HttpFetcher:
        async def handler(request: httpx.Request) -> httpx.Response:
            self.fetched.append(str(request.url))
            route = self.routes.get(request.url.path)
            if route is None:
                return httpx.Response(404, text="no such page")
            return await route(request)

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        return HttpFetcher(
            client,
            EgressPolicy([HOST]),
            FetchLimits(timeout_s=self.timeout_s, max_bytes=self.max_bytes),
        )

    def serve(self, path: str, html: str, content_type: str = "text/html; charset=utf-8") -> str:
        async def route(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text=html, headers={"content-type": content_type})

        self.routes[path] = route
        return f"http://{HOST}{path}"

    def intake(self) -> Intake:
        return Intake(self.store, self.queue, clock=self.clock)

    def research(self) -> Research:
        gatherer = Gatherer(self.adapters(), concurrency=8, deadline_s=10, clock=self.clock)
        return Research(self.store, self.queue, gatherer, clock=self.clock)

    def adapters(self) -> SourceAdapters:
        return SourceAdapters(fetcher=self.fetcher())

    def summarize(self) -> Summarize:
        return Summarize(
            self.store, self.queue, ExtractiveSummarizer(), claim_timeout_s=60, clock=self.clock
        )

    def combine(self) -> Combine:
        return Combine(self.store, ExtractiveSummarizer(), queue=self.queue, clock=self.clock)

    def dead_letter(self) -> DeadLetter:
        return DeadLetter(self.store, clock=self.clock)

    @contextmanager
    def writes_refused(self, refused: Callable[[str], bool]) -> Iterator[None]:
        """S3 refuses every write of a key `refused` names meanwhile (SlowDown, past the
        SDK's retries)."""
        real_put = self.blobs.put

        async def put(key: str, body: bytes, *, content_type: str = "application/json") -> bool:
            if refused(key):
                raise StorageUnavailable(f"S3 put {key} failed: SlowDown")
            return await real_put(key, body, content_type=content_type)

        self.blobs.put = put  # type: ignore[method-assign]
        try:
            yield
        finally:
            self.blobs.put = real_put  # type: ignore[method-assign]

    async def submit(self, question: str, urls: list[Any], **options: Any) -> str:
        request = ResearchRequest.model_validate({"question": question, "sources": urls, **options})
        return (await self.intake().submit(request, owner="alice")).job_id

    async def drain(self) -> None:
        """Deliver every queued message until the queues are empty, each stage at once."""
        while any(self.queue.sent.values()):
            research = self.research()
            for task in self.queue.take("intake"):
                assert isinstance(task, ResearchTask | SubmitTask | ExpandTask)
                await research.run(task)
            summarize = self.summarize()
            tasks = self.queue.take("summarize")
            await asyncio.gather(*(summarize.run(t) for t in tasks if isinstance(t, SummarizeTask)))
            combine = self.combine()
            for task in self.queue.take("combine"):
                assert isinstance(task, CombineTask)
                await combine.run(task)
