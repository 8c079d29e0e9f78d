"""Builds adapters from settings, once per container, on the loop that will use them.

The only place that knows which technology stands behind each port. Each stage asks for
just the clients it uses, so the summarize function never pays for an HTTP client and the
API never builds one for fetching.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx

from brief.adapters.s3 import S3BlobStore
from brief.adapters.sqs import SQSTaskQueue
from brief.adapters.uploads import S3UploadGrants
from brief.egress import EgressPolicy
from brief.extractive import ExtractiveSummarizer
from brief.jobstore import JobStore
from brief.pipeline import Combine, DeadLetter, Intake, Research, Summarize
from brief.ports import Summarizer, TaskQueue
from brief.retrieval import FetchLimits, HttpFetcher
from brief.settings import Settings
from brief.sources import Gatherer, SourceAdapters


class Wiring:
    """Settings plus the clients built from them, each created on first use and kept."""

    def __init__(
        self, settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._http_transport = http_transport
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def from_environment(cls) -> Wiring:
        """Wiring for a Lambda container: settings from the function's environment."""
        return cls(Settings())  # bucket and queues come from the function's environment

    async def _aws(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            if service not in self._clients:
                import aioboto3  # deferred: ~0.3 s of imports only functions that use AWS pay
                from aiobotocore.config import AioConfig

                config = AioConfig(
                    max_pool_connections=64,
                    retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=5,
                    read_timeout=30,
                )
                client = aioboto3.Session().client(
                    service, region_name=self.settings.region, config=config
                )
                self._clients[service] = await self._stack.enter_async_context(client)
        return self._clients[service]

    async def store(self) -> JobStore:
        """The job store on the configured bucket."""
        return JobStore(S3BlobStore(await self._aws("s3"), self.settings.bucket))

    async def queue(self) -> TaskQueue:
        """The pipeline's queues."""
        s = self.settings
        urls = {
            "intake": s.intake_queue_url,
            "summarize": s.summarize_queue_url,
            "combine": s.combine_queue_url,
        }
        return SQSTaskQueue(await self._aws("sqs"), urls)  # type: ignore[arg-type]

    def http(self) -> httpx.AsyncClient:
        """One HTTP client per container: building one costs an SSL context (~18 ms)."""
        if self._http is None:
            s = self.settings
            self._http = httpx.AsyncClient(
                transport=self._http_transport,
                timeout=httpx.Timeout(s.fetch_timeout_s, connect=min(5.0, s.fetch_timeout_s)),
                limits=httpx.Limits(
                    max_connections=s.fetch_concurrency * 2,
                    max_keepalive_connections=s.fetch_concurrency,
                ),
                headers={
                    "User-Agent": s.user_agent,
                    "Accept": "text/html,text/plain;q=0.9,*/*;q=0.5",
                },
                trust_env=False,  # a proxy from the environment would bypass the egress checks
            )
            self._stack.push_async_callback(self._http.aclose)
        return self._http

    def summarizer(self) -> Summarizer:
        """The configured model; offline extractive by default."""
        s = self.settings
        return ExtractiveSummarizer(sentences=s.summary_sentences, findings=s.report_findings)

    async def intake(self) -> Intake:
        """The API's write path."""
        return Intake(await self.store(), await self.queue())

    async def uploads(self) -> S3UploadGrants:
        """Presigned uploads into the bucket's `uploads/` prefix."""
        s = self.settings
        return S3UploadGrants(await self._aws("s3"), s.bucket, max_bytes=s.max_document_bytes)

    async def research(self) -> Research:
        """The retrieval stage."""
        s = self.settings
        fetcher = HttpFetcher(
            self.http(),
            EgressPolicy(s.allowed_hosts),
            FetchLimits(s.fetch_timeout_s, s.max_body_bytes, s.max_redirects),
        )
        gatherer = Gatherer(
            SourceAdapters(fetcher=fetcher),
            concurrency=s.fetch_concurrency,
            deadline_s=s.retrieval_deadline_s,
        )
        return Research(await self.store(), await self.queue(), gatherer)

    async def summarize(self) -> Summarize:
        """The per-source summarize stage."""
        return Summarize(
            await self.store(),
            await self.queue(),
            self.summarizer(),
            claim_timeout_s=self.settings.combine_claim_timeout_s,
        )

    async def combine(self) -> Combine:
        """The combine stage."""
        return Combine(await self.store(), self.summarizer())

    async def dead_letter(self) -> DeadLetter:
        """The dead-letter stage."""
        return DeadLetter(await self.store())

    async def aclose(self) -> None:
        """Close every client (tests and the local stack; a Lambda container just freezes)."""
        await self._stack.aclose()
        self._clients.clear()
        self._http = None
