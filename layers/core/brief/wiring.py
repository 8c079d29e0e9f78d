"""Builds adapters from settings, once per container, on the loop that will use them.

The only place that knows which technology stands behind each port. Each stage asks for
just the clients it uses, so the summarize function never pays for an HTTP client and the
API never builds one for fetching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

# Everything is imported where it is built: a function's cold start pays only for the
# adapters it uses (the dead-letter function never loads httpx, a PDF reader or a model), and
# its import pays for none of them.
if TYPE_CHECKING:
    import httpx

    from brief.adapters.uploads import S3UploadGrants
    from brief.cancellation import CancelWatch
    from brief.deadletter import DeadLetter
    from brief.egress import EgressPolicy
    from brief.jobstore import JobStore
    from brief.llm.config import StageConfig
    from brief.pipeline import Combine, Intake, Research, Summarize
    from brief.ports import (
        BlobStore,
        DocumentStore,
        Fetcher,
        RecordReleaser,
        SearchProvider,
        Summarizer,
        TaskQueue,
        VectorIndex,
    )
    from brief.settings import Settings
    from brief.sweeper import Sweeper


# Called with each AWS client a wiring builds (the service's name, the client): how the local
# stack injects faults into its functions' clients and the benchmark times their calls. None
# in Lambda.
ClientHook = Callable[[str, Any], None]


class Wiring:
    """Settings plus the clients built from them, each created on first use and kept."""

    def __init__(
        self,
        settings: Settings,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        client_hook: ClientHook | None = None,
    ) -> None:
        self.settings = settings
        self._http_transport = http_transport
        self._client_hook = client_hook
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: Any = None  # aioboto3.Session, made with the first client
        self._http: httpx.AsyncClient | None = None
        self._model_http: httpx.AsyncClient | None = None
        self._summarizer: Summarizer | None = None

    @classmethod
    def from_environment(
        cls,
        environment: Mapping[str, str] | None = None,
        *,
        client_hook: ClientHook | None = None,
    ) -> Wiring:
        """Wiring for a container: settings from the function's environment (the process's
        in Lambda; the mapping the local stack gives each of its containers)."""
        from brief.settings import Settings

        if environment is not None:
            return cls(Settings.from_mapping(environment), client_hook=client_hook)
        return cls(Settings(), client_hook=client_hook)  # bucket comes from the environment

    async def _aws(self, service: str, **options: Any) -> Any:
        """The service's client, built once on first use; `options` override the AioConfig
        defaults (the first caller's options win: a client is built only once)."""
        if service in self._clients:
            return self._clients[service]
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            if service not in self._clients:
                import aioboto3  # deferred: ~0.3 s of imports only functions that use AWS pay
                from aiobotocore.config import AioConfig

                config = AioConfig(
                    **{
                        "max_pool_connections": 64,
                        "retries": {"mode": "standard", "max_attempts": 4},
                        "connect_timeout": 5,
                        "read_timeout": 30,
                        **options,
                    }
                )
                # One session for every client: each session loads and parses the service
                # models anew (S3's alone is ~37k objects and 60-100 ms).
                if self._session is None:
                    self._session = aioboto3.Session()
                client = self._session.client(
                    service,
                    region_name=self.settings.region,
                    endpoint_url=self.settings.aws_endpoint_url,
                    config=config,
                )
                self._clients[service] = await self._stack.enter_async_context(client)
                if self._client_hook is not None:
                    self._client_hook(service, self._clients[service])
        return self._clients[service]

    async def _blobs(self) -> BlobStore:
        """The configured bucket, as a blob store."""
        from brief.adapters.s3 import S3BlobStore

        return S3BlobStore(await self._aws("s3"), self.settings.bucket)

    async def store(self) -> JobStore:
        """The job store on the configured bucket."""
        from brief.jobstore import JobStore

        return JobStore(await self._blobs())

    async def queue(self) -> TaskQueue:
        """The pipeline's queues."""
        from brief.adapters.sqs import SQSTaskQueue

        return SQSTaskQueue(await self._aws("sqs"), self.settings.queue_urls())

    async def releaser(self) -> RecordReleaser:
        """What returns a failed SQS record to its queue when it is worth retrying."""
        from brief.adapters.sqs import SQSTaskQueue

        return SQSTaskQueue(await self._aws("sqs"), {})

    def egress(self) -> EgressPolicy:
        """Where users' URLs may lead: public addresses, and the allowed hosts."""
        from brief.egress import EgressPolicy

        if "egress" not in self._clients:
            self._clients["egress"] = EgressPolicy(self.settings.allowed_hosts)
        policy: EgressPolicy = self._clients["egress"]
        return policy

    def http(self) -> httpx.AsyncClient:
        """The client for users' URLs, one per container (an SSL context costs ~18 ms): it
        connects only to addresses the egress policy checked, so DNS cannot be raced."""
        import httpx

        from brief.egress import guarded_client

        if self._http is None:
            s = self.settings
            timeout = httpx.Timeout(
                s.fetch_timeout_s, connect=min(s.fetch_connect_timeout_s, s.fetch_timeout_s)
            )
            limits = httpx.Limits(
                max_connections=s.fetch_concurrency * 2,
                max_keepalive_connections=s.fetch_concurrency,
            )
            headers = {"User-Agent": s.user_agent, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.5"}
            if self._http_transport is None:
                self._http = guarded_client(
                    self.egress(), timeout=timeout, limits=limits, headers=headers
                )
            else:  # tests: a MockTransport; HttpFetcher then checks names before each request
                self._http = httpx.AsyncClient(
                    transport=self._http_transport,
                    timeout=timeout,
                    limits=limits,
                    headers=headers,
                    trust_env=False,  # a proxy from the environment would bypass the checks
                )
            self._stack.push_async_callback(self._http.aclose)
        return self._http

    async def fetcher(self) -> Fetcher:
        """Fetches users' URLs within the limits, through the revalidating page cache."""
        from brief.pagecache import CachingFetcher
        from brief.retrieval import FetchLimits, HttpFetcher

        s = self.settings
        http = HttpFetcher(
            self.http(),
            self.egress(),
            FetchLimits(
                timeout_s=s.fetch_timeout_s,
                max_bytes=s.max_body_bytes,
                max_redirects=s.max_redirects,
                connect_timeout_s=s.fetch_connect_timeout_s,
                read_timeout_s=s.fetch_read_timeout_s,
            ),
        )
        if not s.page_cache:
            return http
        return CachingFetcher(http, await self._blobs(), max_fresh_s=s.page_cache_max_fresh_s)

    def services_http(self) -> httpx.AsyncClient:
        """The client for the operator's own services (search, vector index): not users' URLs,
        so not behind the egress checks (an internal SearXNG need not be an allowed host)."""
        import httpx

        if "services" not in self._clients:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.fetch_timeout_s, connect=5.0),
                headers={"User-Agent": self.settings.user_agent},
                trust_env=False,
                transport=self._http_transport,
            )
            self._stack.push_async_callback(client.aclose)
            self._clients["services"] = client
        services: httpx.AsyncClient = self._clients["services"]
        return services

    def search_providers(self) -> dict[str, SearchProvider]:
        """The configured web search provider, by name (none when not configured)."""
        from brief.adapters.search import BraveSearch, SearxngSearch, TavilySearch

        s, http = self.settings, self.services_http()
        if s.search_provider == "searxng":
            return {"searxng": SearxngSearch(http, s.searxng_url)}
        if s.search_provider == "brave":
            return {"brave": BraveSearch(http, s.brave_api_key.get_secret_value())}
        if s.search_provider == "tavily":
            return {"tavily": TavilySearch(http, s.tavily_api_key.get_secret_value())}
        return {}

    def vector_index(self) -> VectorIndex | None:
        """The configured vector index, if any."""
        import httpx

        from brief.adapters.vector import OpenSearchIndex, QdrantIndex

        s, http = self.settings, self.services_http()
        text, title, url = s.vector_text_field, s.vector_title_field, s.vector_url_field
        if s.vector_kind == "qdrant":
            return QdrantIndex(
                http,
                s.vector_url,
                model=s.qdrant_model,
                api_key=s.vector_api_key.get_secret_value() or None,
                text_field=text,
                title_field=title,
                url_field=url,
            )
        if s.vector_kind == "opensearch":
            password = s.opensearch_password.get_secret_value()
            auth = (
                httpx.BasicAuth(s.opensearch_username, password) if s.opensearch_username else None
            )
            return OpenSearchIndex(
                http,
                s.vector_url,
                model_id=s.opensearch_model_id or None,
                vector_field=s.opensearch_vector_field,
                auth=auth,
                text_field=text,
                title_field=title,
                url_field=url,
            )
        return None

    async def documents(self) -> DocumentStore:
        """S3 documents: the bucket's uploads/ and documents/, plus any configured places."""
        from brief import keys
        from brief.adapters.documents import S3DocumentStore

        s = self.settings
        places = {f"s3://{s.bucket}/{p}" for p in (keys.UPLOADS, keys.DOCUMENTS)}
        places.update(s.document_places)
        return S3DocumentStore(
            await self._aws("s3"), allowed=sorted(places), max_bytes=s.max_document_bytes
        )

    async def summarizer(self) -> Summarizer:
        """The configured model (offline extractive by default), built once per container:
        every record of a batch, and every warm invocation, shares its rate limiter."""
        from brief.extractive import ExtractiveSummarizer

        if self._summarizer is None:
            async with self._locks.setdefault("summarizer", asyncio.Lock()):
                if self._summarizer is None:
                    from brief.llm.factory import build_summarizer

                    s = self.settings
                    self._summarizer = await build_summarizer(
                        s.model_setup(),
                        http=self.model_http,
                        bedrock_client_factory=self._bedrock,
                        secret_clients=self._aws,
                        extractive=ExtractiveSummarizer(
                            sentences=s.summary_sentences, findings=s.report_findings
                        ),
                    )
        return self._summarizer

    def _model_stages(self) -> list[StageConfig]:
        s = self.settings
        return [s.summarize_model, s.combine_model or s.summarize_model]

    def model_http(self) -> httpx.AsyncClient:
        """The client for model APIs: its own pool and timeouts, not the page fetcher's."""
        import httpx

        if self._model_http is None:
            stages = self._model_stages()
            connections = sum(st.concurrency for st in stages) * 2
            self._model_http = httpx.AsyncClient(
                timeout=httpx.Timeout(max(st.timeout_s for st in stages), connect=5.0),
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
                trust_env=False,
                transport=self._http_transport,
            )
            self._stack.push_async_callback(self._model_http.aclose)
        return self._model_http

    async def _bedrock(self) -> Any:
        """Bedrock's client, with botocore's retries off: ours share the rate limiter."""
        stages = self._model_stages()
        return await self._aws(
            "bedrock-runtime",
            retries={"mode": "standard", "total_max_attempts": 1},
            read_timeout=max(st.timeout_s for st in stages),
            max_pool_connections=2 * sum(st.concurrency for st in stages),
        )

    async def intake(self) -> Intake:
        """The API's write path."""
        from brief.pipeline import Intake

        return Intake(await self.store(), await self.queue())

    async def uploads(self) -> S3UploadGrants:
        """Presigned uploads into the bucket's `uploads/` prefix."""
        from brief.adapters.uploads import S3UploadGrants

        s = self.settings
        return S3UploadGrants(await self._aws("s3"), s.bucket, max_bytes=s.max_document_bytes)

    async def research(self) -> Research:
        """The retrieval stage."""
        from brief.pipeline import Research
        from brief.sources import Gatherer, SourceAdapters

        s = self.settings
        search = self.search_providers()
        adapters = SourceAdapters(
            fetcher=await self.fetcher(),
            documents=await self.documents(),
            search=search,
            default_search=next(iter(search), None),
            vector=self.vector_index(),
        )
        gatherer = Gatherer(
            adapters,
            concurrency=s.fetch_concurrency,
            deadline_s=s.retrieval_deadline_s,
        )
        return Research(
            await self.store(), await self.queue(), gatherer, cancel_watch=self.cancel_watch()
        )

    async def summarize(self) -> Summarize:
        """The per-source summarize stage."""
        from brief.pipeline import Summarize

        return Summarize(
            await self.store(),
            await self.queue(),
            await self.summarizer(),
            claim_timeout_s=self.settings.combine_claim_timeout_s,
            cancel_watch=self.cancel_watch(),
        )

    async def combine(self) -> Combine:
        """The combine stage."""
        from brief.pipeline import Combine

        return Combine(
            await self.store(),
            await self.summarizer(),
            queue=await self.queue(),
            cancel_watch=self.cancel_watch(),
            draft_every_s=self.settings.report_draft_every_s,
        )

    def cancel_watch(self) -> CancelWatch:
        """How often work in flight looks for its job's cancel marker (`cancel_poll_s`)."""
        from brief.cancellation import CancelWatch

        poll = self.settings.cancel_poll_s
        return CancelWatch(grace_s=poll, poll_s=poll)

    async def dead_letter(self) -> DeadLetter:
        """The dead-letter stage."""
        from brief.deadletter import DeadLetter

        return DeadLetter(await self.store())

    async def sweeper(self) -> Sweeper:
        """The sweeper, which resumes a fan-in that never sent its combine and fails the jobs
        that stopped making progress."""
        from brief.sweeper import Sweeper

        s = self.settings
        return Sweeper(
            await self.store(),
            stall_timeout_s=s.stall_timeout_s,
            concurrency=s.sweep_concurrency,
            queue=await self.queue(),
            claim_timeout_s=s.combine_claim_timeout_s,
        )

    async def aclose(self) -> None:
        """Close every client (tests and the local stack; a Lambda container just freezes)."""
        await self._stack.aclose()
        self._clients.clear()
        self._http = None
        self._model_http = None
        self._summarizer = None
