"""Every kind of source in one job, gathered at once, on fakes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import ValidationError

from brief.errors import SourceError, StorageUnavailable
from brief.messages import ResearchTask
from brief.models import Expansion, ResearchRequest, SourceRecord, plan
from brief.ports import FetchedPage, Fetcher, Passage, SearchHit
from brief.sources import Gatherer, SourceAdapters

from .world import HOST, World, page


class FakeSearch:
    """Answers every query with `hits`; counts its calls."""

    name = "fake"

    def __init__(self, hits: list[str], *, fail: str | None = None) -> None:
        self.hits = hits
        self.fail = fail
        self.calls = 0

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise SourceError(self.fail)
        return [SearchHit(url=u, title=f"hit {u}") for u in self.hits[:limit]]


class FakeVector:
    async def query(self, text: str, *, collection: str, top_k: int) -> list[Passage]:
        return [
            Passage(
                id=f"p{i}",
                text=f"Glaciers flow because ice deforms under weight {i}.",
                score=1 / (i + 1),
            )
            for i in range(top_k)
        ]


class FakeDocuments:
    async def read(self, uri: str) -> FetchedPage:
        if not uri.startswith("s3://docs/"):
            raise SourceError(f"{uri} is outside the places Brief may read (s3://docs/)")
        body = b"Glaciers move downhill because ice deforms slowly under its own great weight."
        return FetchedPage(uri, uri, "text/plain", body, 1)


def setup(world: World, search: FakeSearch) -> None:
    base = world.adapters()
    world.adapters = lambda: SourceAdapters(  # type: ignore[method-assign]
        fetcher=base.fetcher,
        documents=FakeDocuments(),
        search={"fake": search},
        default_search="fake",
        vector=FakeVector(),
    )


async def test_plan_gives_each_source_a_block_of_slots_in_request_order() -> None:
    request = ResearchRequest.model_validate(
        {
            "question": "why?",
            "sources": [
                "https://a.org/",
                {"search": "glaciers", "limit": 3},
                "s3://docs/x.txt",
                {"vector": "ice", "collection": "c", "top_k": 2},
            ],
        }
    )
    assert [first for first, _ in plan(request.sources)] == [0, 1, 4, 5]


async def test_a_job_mixing_every_kind_of_source_cites_them_all(world: World) -> None:
    url = world.serve(
        "/a.html", page("Glacier A", "Glaciers move downhill under their own weight.")
    )
    found = world.serve(
        "/b.html", page("Glacier B", "Meltwater lets glaciers slide over their beds.")
    )
    search = FakeSearch([url, found, f"http://{HOST}/missing"])
    setup(world, search)
    job_id = await world.submit(
        "Why do glaciers move downhill?",
        [
            url,
            {"search": "glacier motion", "limit": 3},
            "s3://docs/glaciers.txt",
            {"vector": "ice deformation", "collection": "notes", "top_k": 2},
        ],
    )
    await world.drain()

    view = await world.store.view(job_id)
    assert view.state == "done"
    by_index = {s.index: s for s in view.sources}
    assert by_index[0].kind == "url"
    assert by_index[0].state == "ok"
    # The search's first hit is the URL asked for directly: dropped, not fetched twice.
    assert by_index[1].url == found
    assert by_index[1].via == "search: glacier motion"
    assert by_index[2].state == "failed"
    assert "404" in (by_index[2].reason or "")
    assert by_index[4].kind == "document"
    assert [by_index[i].kind for i in (5, 6)] == ["vector", "vector"]
    assert by_index[5].url == "vector://notes/p0"
    report = await world.store.report(job_id)
    assert report is not None
    assert [c.index for c in report.citations] == [0, 1, 4, 5, 6]
    assert [c.n for c in report.citations] == [1, 2, 5, 6, 7]  # as the status numbers them
    assert world.fetched.count(url) == 1


async def test_a_redelivered_research_message_reuses_the_search_it_ran(world: World) -> None:
    url = world.serve(
        "/b.html", page("Glacier B", "Meltwater lets glaciers slide over their beds.")
    )
    search = FakeSearch([url])
    setup(world, search)
    job_id = await world.submit("Why do glaciers move?", [{"search": "glaciers"}])
    task = world.queue.take("intake")[0]
    assert isinstance(task, ResearchTask)
    await world.research().run(task)
    del world.blobs.objects[f"jobs/{job_id}/retrieval.json"]
    world.queue.take("summarize")
    await world.research().run(task)
    assert search.calls == 1
    assert len(world.queue.take("summarize")) == 1


async def test_a_failing_search_and_an_unconfigured_kind_are_recorded_with_reasons(
    world: World,
) -> None:
    url = world.serve(
        "/a.html", page("Glacier A", "Glaciers move downhill under their own weight.")
    )
    base = world.adapters()
    world.adapters = lambda: SourceAdapters(  # type: ignore[method-assign]
        fetcher=base.fetcher,
        search={"fake": FakeSearch([], fail="the search provider refused the API key")},
        default_search="fake",
    )
    job_id = await world.submit(
        "Why do glaciers move?",
        [url, {"search": "glaciers"}, {"vector": "ice", "collection": "c"}, "s3://docs/x.txt"],
    )
    await world.drain()
    view = await world.store.view(job_id)
    assert view.state == "done"
    reasons = {s.kind: s.reason for s in view.sources if s.state == "failed"}
    assert reasons == {
        "search": "the search provider refused the API key",
        "vector": "vector search is not configured",
        "document": "documents in S3 are not configured",
    }


async def test_two_searches_finding_the_same_page_fetch_it_once(world: World) -> None:
    shared = world.serve(
        "/s.html", page("Shared", "Glaciers deform under their own weight slowly.")
    )
    setup(world, FakeSearch([shared]))
    job_id = await world.submit(
        "Why do glaciers move?", [{"search": "one", "limit": 1}, {"search": "two", "limit": 1}]
    )
    await world.drain()
    view = await world.store.view(job_id)
    states = sorted((s.state, s.reason) for s in view.sources)
    assert states == [("failed", "also found by another search"), ("ok", None)]
    assert world.fetched.count(shared) == 1


async def test_retrieval_runs_every_kind_at_once(world: World) -> None:
    """A slow search does not delay the URL fetched beside it: both start immediately."""
    order: list[str] = []
    url = world.serve(
        "/a.html", page("Glacier A", "Glaciers move downhill under their own weight.")
    )

    class SlowSearch(FakeSearch):
        async def search(self, query: str, *, limit: int) -> list[SearchHit]:
            order.append("search started")
            await asyncio.sleep(0.05)
            order.append("search answered")
            return []

    async def on_record(record: SourceRecord) -> None:
        order.append(f"record {record.outcome.index}")

    async def keep(expansion: Expansion) -> Expansion:
        return expansion

    gatherer = Gatherer(
        SourceAdapters(
            fetcher=world.adapters().fetcher, search={"fake": SlowSearch([])}, default_search="fake"
        ),
        concurrency=4,
        deadline_s=5,
    )
    request = ResearchRequest.model_validate(
        {"question": "Why do glaciers move?", "sources": [{"search": "glaciers"}, url]}
    )
    await gatherer.gather(
        "a" * 32, request.sources, done=set(), expansions={}, on_expansion=keep, on_record=on_record
    )
    assert order[0] == "search started"
    assert order.index("record 5") < order.index("search answered")


class CrashingFetcher:
    """Fetches through `inner`, but one URL's fetch raises `error`: a bug one source meets."""

    def __init__(self, inner: Fetcher, url: str, error: BaseException) -> None:
        self.inner = inner
        self.url = url
        self.error = error
        self.started = asyncio.Event()

    async def fetch(self, url: str) -> FetchedPage:
        if url != self.url:
            return await self.inner.fetch(url)
        self.started.set()
        raise self.error

    async def settle(self) -> None:
        await self.inner.settle()


async def test_a_source_whose_retrieval_crashes_fails_alone_and_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    good = world.serve("/a.html", page("Glacier A", "Glaciers move downhill under their weight."))
    bad = f"http://{HOST}/crash"
    fetcher = CrashingFetcher(world.adapters().fetcher, bad, OverflowError("port must be 0-65535"))
    world.adapters = lambda: SourceAdapters(fetcher=fetcher)  # type: ignore[method-assign]
    job_id = await world.submit("Why do glaciers move?", [bad, good])

    with caplog.at_level(logging.ERROR, logger="brief.sources"):
        await world.drain()

    view = await world.store.view(job_id)
    assert view.state == "done"
    assert [(s.state, s.reason) for s in view.sources] == [
        ("failed", "an unexpected error stopped its retrieval (OverflowError); logged"),
        ("ok", None),
    ]
    report = await world.store.report(job_id)
    assert report is not None
    assert [c.url for c in report.citations] == [good]
    [crash] = caplog.records
    assert (crash.__dict__["job_id"], crash.__dict__["source"]) == (job_id, 1)
    assert crash.exc_info is not None
    assert crash.exc_info[0] is OverflowError


class UnavailableDocuments:
    async def read(self, uri: str) -> FetchedPage:
        raise StorageUnavailable("S3 is throttling requests (SlowDown)")


async def test_a_storage_error_still_fails_the_delivery_so_sqs_retries_it(world: World) -> None:
    url = world.serve("/a.html", page("Glacier A", "Glaciers move downhill under their weight."))
    adapters = SourceAdapters(fetcher=world.adapters().fetcher, documents=UnavailableDocuments())
    records: list[SourceRecord] = []

    async def keep(record: SourceRecord) -> None:
        records.append(record)

    async def stored(expansion: Expansion) -> Expansion:
        return expansion

    with pytest.raises(StorageUnavailable):
        await Gatherer(adapters, concurrency=4, deadline_s=5).gather(
            "a" * 32,
            ["s3://docs/x.txt", url],
            done=set(),
            expansions={},
            on_expansion=stored,
            on_record=keep,
        )
    assert all(r.outcome.index != 0 for r in records)  # the document is not marked failed


async def test_cancelling_retrieval_records_nothing_for_the_sources_in_flight(
    world: World,
) -> None:
    hung = asyncio.Event()

    class Hanging:
        async def fetch(self, url: str) -> FetchedPage:
            hung.set()
            await asyncio.Event().wait()
            raise AssertionError("never answers")

        async def settle(self) -> None:
            return None

    records: list[SourceRecord] = []

    async def keep(record: SourceRecord) -> None:
        records.append(record)

    async def stored(expansion: Expansion) -> Expansion:
        return expansion

    gathering = asyncio.create_task(
        Gatherer(SourceAdapters(fetcher=Hanging()), concurrency=4, deadline_s=60).gather(
            "a" * 32,
            [f"http://{HOST}/a", f"http://{HOST}/b"],
            done=set(),
            expansions={},
            on_expansion=stored,
            on_record=keep,
        )
    )
    await hung.wait()
    gathering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathering
    assert records == []


async def test_a_job_accepted_with_a_url_no_request_can_fetch_still_runs(world: World) -> None:
    """Submitted before the API refused such hosts: read back, it fails only that source."""
    good = world.serve("/a.html", page("Glacier A", "Glaciers move downhill under their weight."))
    request = ResearchRequest.model_validate(
        {"question": "Why do glaciers move?", "sources": ["http://xn--n3h.net/", good]},
        context={"stored": True},
    )
    job_id = (await world.intake().submit(request, owner="alice")).job_id

    await world.drain()

    view = await world.store.view(job_id)
    assert view.state == "done"
    assert [(s.state, s.reason) for s in view.sources] == [
        (
            "failed",
            "not a valid URL: the host name xn--n3h.net cannot be decoded "
            "(Codepoint U+2603 at position 1 of '☃' not allowed)",
        ),
        ("ok", None),
    ]


async def test_a_job_stored_before_the_size_and_character_rules_still_reads(world: World) -> None:
    """A URL over today's length limit and a NUL in the question were accepted once: the
    stored job still reads back, and the API's own rules still refuse both in a request."""
    good = world.serve("/a.html", page("Glacier A", "Glaciers move downhill under their weight."))
    long_url = good + "?" + "q" * 5_000
    fields = {"question": "Why do\x00 glaciers move?", "sources": [long_url]}
    with pytest.raises(ValidationError):
        ResearchRequest.model_validate(fields)
    request = ResearchRequest.model_validate(fields, context={"stored": True})
    job_id = (await world.intake().submit(request, owner="alice")).job_id

    view = await world.store.view(job_id)
    stored = await world.store.job(job_id)

    assert view.state == "queued"
    assert stored.request.sources == [long_url]
