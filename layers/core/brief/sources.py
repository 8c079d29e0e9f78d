"""Gathering a job's sources: every kind at once, each document in a slot known in advance.

A request's sources are URLs, `s3://` documents, web searches and vector searches. Each gets a
block of indexes up front (one for a URL or document, `limit` for a search, `top_k` for a
vector query), so a document's index never depends on which query answered first, and a
redelivered message writes to the same keys. Searches start at once beside every fetch, and
each result is fetched the moment its search answers: the critical path is the slowest
search plus its slowest page, not the sum of anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from brief.errors import PermanentError, RetryableError, SourceError
from brief.extraction import extract
from brief.models import (
    Expansion,
    Hit,
    SearchSource,
    SourceKind,
    SourceOutcome,
    SourceRecord,
    SourceSpec,
    VectorSource,
    plan,
    slots,
    utcnow,
)
from brief.ports import DocumentStore, FetchedPage, Fetcher, SearchProvider, VectorIndex
from brief.urls import same_page

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceAdapters:
    """The adapters retrieval may use; a kind without one fails with a reason, not a crash."""

    fetcher: Fetcher
    documents: DocumentStore | None = None
    search: Mapping[str, SearchProvider] = field(default_factory=dict)
    default_search: str | None = None
    vector: VectorIndex | None = None


RecordSink = Callable[[SourceRecord], Awaitable[None]]
ExpansionSink = Callable[[Expansion], Awaitable[Expansion]]


class Gatherer:
    """Retrieves every source of a job concurrently, under one bound and one deadline."""

    def __init__(
        self,
        adapters: SourceAdapters,
        *,
        concurrency: int,
        deadline_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.adapters = adapters
        self.concurrency = concurrency
        self.deadline_s = deadline_s
        self.clock = clock

    async def settle(self) -> None:
        """Finish the fetchers' background work (cache writes) before the invocation ends."""
        await self.adapters.fetcher.settle()

    async def gather(
        self,
        job_id: str,
        sources: Sequence[SourceSpec],
        *,
        done: set[int],
        expansions: Mapping[int, Expansion],
        on_expansion: ExpansionSink,
        on_record: RecordSink,
        known: Collection[str] = (),
    ) -> None:
        """Retrieve every slot not in `done`; each record goes to `on_record` as it is ready.

        `expansions` are the searches a previous delivery already ran (reused, not rerun);
        `on_expansion` stores a new one and returns the stored one (which wins a race). A
        search result among `known` pages (`same_page` of each) is left out, as one of the
        request's own URLs is.
        """
        run = _Gathering(self, job_id, done, on_record, asyncio.Semaphore(self.concurrency))
        explicit = {same_page(spec) for spec in sources if isinstance(spec, str)} | set(known)
        try:
            async with asyncio.TaskGroup() as group:
                run.group = group
                for position, (first, spec) in enumerate(plan(sources)):
                    if isinstance(spec, str):
                        if first not in done:
                            run.retrieve(first, spec)
                    elif position in expansions:
                        run.expanded(spec, expansions[position])
                    elif not all(i in done for i in range(first, first + slots(spec))):
                        work = run.expand(position, first, spec, explicit, on_expansion)
                        run.isolate(first, _label(spec), _kind(spec), work)
        except* RetryableError as failed:
            # A storage error while recording a source: raised as itself, so the record fails
            # as retryable (SQS brings it back) instead of as a crash of unknown kind.
            raise failed.exceptions[0] from None


class _Gathering:
    """One delivery's retrieval: the bound, the deadline and the URLs already claimed."""

    def __init__(
        self,
        gatherer: Gatherer,
        job_id: str,
        done: set[int],
        on_record: RecordSink,
        bound: asyncio.Semaphore,
    ) -> None:
        self.g = gatherer
        self.adapters = gatherer.adapters
        self.job_id = job_id
        self.done = done
        self.on_record = on_record
        self.bound = bound
        self.deadline = asyncio.get_running_loop().time() + gatherer.deadline_s
        self.claimed: set[str] = set()
        self.group: asyncio.TaskGroup | None = None

    def isolate(
        self,
        index: int,
        label: str,
        kind: SourceKind,
        work: Coroutine[Any, Any, None],
        *,
        via: str | None = None,
    ) -> None:
        """Run one source's `work` beside the others; whatever it raises fails that source
        alone, recorded in slot `index` as `label`."""
        assert self.group is not None
        self.group.create_task(self._isolated(index, label, kind, work, via))

    async def _isolated(
        self,
        index: int,
        label: str,
        kind: SourceKind,
        work: Coroutine[Any, Any, None],
        via: str | None,
    ) -> None:
        """The one place where a source's exception becomes that source's failure.

        A PermanentError (SourceError above all) carries the reason. A RetryableError is
        storage failing, not the source: it propagates, so the record is retried, and so does
        cancellation. Anything else is a bug in Brief or a library met by one URL, page or
        server: logged with the job and the source's number, recorded as this source's
        failure, and the job goes on with the rest.
        """
        started = time.perf_counter()
        try:
            await work
            return
        except RetryableError:
            raise
        except PermanentError as exc:
            reason = str(exc)
        except Exception as exc:  # the boundary: one source's crash must not fail the job
            log.exception(
                "retrieving a source crashed",
                extra={"job_id": self.job_id, "source": index + 1, "kind": kind},
            )
            reason = f"an unexpected error stopped its retrieval ({type(exc).__name__}); logged"
        await self.fail(index, label, kind, reason, started, via=via)

    def retrieve(
        self, index: int, uri: str, *, kind: SourceKind = "url", via: str | None = None
    ) -> None:
        """Start retrieving a URL or an `s3://` document into slot `index`."""
        kind = "document" if uri.startswith("s3://") else kind
        self.isolate(index, uri, kind, self.uri(index, uri, kind, via), via=via)

    async def _bounded(self, work: Callable[[], Awaitable[FetchedPage]]) -> FetchedPage:
        try:
            async with asyncio.timeout_at(self.deadline), self.bound:
                return await work()
        except TimeoutError:
            reason = f"the retrieval deadline of {self.g.deadline_s:g} s passed"
            raise SourceError(reason) from None

    async def uri(self, index: int, uri: str, kind: SourceKind, via: str | None) -> None:
        """Fetch a URL or read a document, extract its text, and record the outcome; raise
        SourceError when it cannot be used."""
        if kind == "document":
            documents = self.adapters.documents
            if documents is None:
                raise SourceError("documents in S3 are not configured")
            read: Callable[[], Awaitable[FetchedPage]] = lambda: documents.read(uri)  # noqa: E731
        else:
            fetcher = self.adapters.fetcher
            read = lambda: fetcher.fetch(uri)  # noqa: E731
        page = await self._bounded(read)
        extracted = await asyncio.to_thread(extract, page.body, page.content_type, page.final_url)
        outcome = SourceOutcome(
            index=index,
            url=uri,
            state="cached" if page.cached else "ok",
            kind=kind,
            via=via,
            final_url=page.final_url,
            canonical_url=extracted.canonical_url,
            title=extracted.title,
            content_type=page.content_type,
            bytes=len(page.body),
            chars=len(extracted.text),
            fetch_ms=page.elapsed_ms,
        )
        await self.record(
            SourceRecord(
                job_id=self.job_id, outcome=outcome, text=extracted.text, fetched_at=self.g.clock()
            )
        )

    async def expand(
        self,
        position: int,
        first: int,
        spec: SearchSource | VectorSource,
        explicit: set[str],
        on_expansion: ExpansionSink,
    ) -> None:
        """Run a search or vector query, store what it found, then retrieve each result; raise
        SourceError when it finds nothing to retrieve."""
        try:
            async with asyncio.timeout_at(self.deadline), self.bound:
                hits = await self._query(spec)
        except TimeoutError:
            raise SourceError("the retrieval deadline passed") from None
        if isinstance(spec, SearchSource):
            hits = [h for h in hits if same_page(h.url) not in explicit]
        if not hits:
            raise SourceError("found nothing")
        expansion = await on_expansion(
            Expansion(job_id=self.job_id, position=position, first_index=first, hits=hits)
        )
        self.expanded(spec, expansion)

    def expanded(self, spec: SearchSource | VectorSource, expansion: Expansion) -> None:
        """Retrieve (or record) each result of a stored expansion into its slot."""
        assert self.group is not None
        label = _label(spec)
        for offset, hit in enumerate(expansion.hits):
            index = expansion.first_index + offset
            if index in self.done:
                continue
            if isinstance(spec, VectorSource):
                self.isolate(index, hit.url, "vector", self.passage(index, hit, label), via=label)
            elif same_page(hit.url) in self.claimed:
                started = time.perf_counter()
                reason = "also found by another search"
                work = self.fail(index, hit.url, "search", reason, started, via=label)
                self.isolate(index, hit.url, "search", work, via=label)
            else:
                self.claimed.add(same_page(hit.url))
                self.retrieve(index, hit.url, kind="search", via=label)

    async def passage(self, index: int, hit: Hit, via: str) -> None:
        """A vector passage is already text: record it."""
        text = hit.text or ""
        outcome = SourceOutcome(
            index=index,
            url=hit.url,
            state="ok",
            kind="vector",
            via=via,
            title=hit.title,
            chars=len(text),
        )
        await self.record(
            SourceRecord(job_id=self.job_id, outcome=outcome, text=text, fetched_at=self.g.clock())
        )

    async def _query(self, spec: SearchSource | VectorSource) -> list[Hit]:
        if isinstance(spec, VectorSource):
            index = self.adapters.vector
            if index is None:
                raise SourceError("vector search is not configured")
            passages = await index.query(spec.vector, collection=spec.collection, top_k=spec.top_k)
            return [
                Hit(
                    url=p.url or f"vector://{spec.collection}/{p.id}",
                    title=p.title,
                    text=p.text,
                    score=p.score,
                )
                for p in passages[: spec.top_k]
            ]
        name = spec.provider or self.adapters.default_search
        provider = self.adapters.search.get(name or "")
        if provider is None:
            known = ", ".join(sorted(self.adapters.search)) or "none is configured"
            raise SourceError(
                f"no web search provider {name or ''} (available: {known})".replace("  ", " ")
            )
        found = await provider.search(spec.search, limit=spec.limit)
        return [Hit(url=h.url, title=h.title, text=None) for h in found[: spec.limit]]

    async def fail(
        self,
        index: int,
        url: str,
        kind: SourceKind,
        reason: str,
        started: float,
        *,
        via: str | None = None,
    ) -> None:
        """Record a source that could not be used, with its reason."""
        outcome = SourceOutcome(
            index=index,
            url=url,
            state="failed",
            kind=kind,
            via=via,
            reason=reason,
            fetch_ms=int((time.perf_counter() - started) * 1000),
        )
        await self.record(
            SourceRecord(job_id=self.job_id, outcome=outcome, fetched_at=self.g.clock())
        )

    async def record(self, record: SourceRecord) -> None:
        self.done.add(record.outcome.index)
        await self.on_record(record)


def _kind(spec: SearchSource | VectorSource) -> SourceKind:
    return "search" if isinstance(spec, SearchSource) else "vector"


def _label(spec: SearchSource | VectorSource) -> str:
    if isinstance(spec, SearchSource):
        return f"search: {spec.search}"
    return f"vector: {spec.vector} (in {spec.collection})"
