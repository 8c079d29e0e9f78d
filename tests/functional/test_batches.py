"""Batches at any size: accepted with a write per 100 jobs, their status read in five calls
whatever their size, the ledger right under simultaneous and repeated notes, and every way a
batch's job ends reaching its status."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from brief import keys
from brief.adapters.memory import MemoryBlobStore
from brief.api import create_app
from brief.ids import batch_job_id
from brief.jobstore import BatchPlace, JobStore
from brief.messages import ExpandTask, SubmitTask
from brief.models import (
    BatchLedger,
    BatchRecord,
    JobFailure,
    LedgerState,
    ResearchRequest,
    utcnow,
)
from brief.sweeper import Sweeper

from .api_world import WorldWiring
from .test_pipeline import QUESTION
from .world import World

REQUEST = ResearchRequest(question=QUESTION, sources=["http://pages.test/a"])
PAGE = "<html><body><article><p>Glaciers move slowly downhill.</p></article></body></html>"


class CountingBlobs(MemoryBlobStore):
    """The memory store, counting each call by its name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        self.calls["put"] += 1
        return await super().put(key, body, content_type=content_type)

    async def get(self, key: str) -> bytes | None:
        self.calls["get"] += 1
        return await super().get(key)

    async def get_tagged(self, key: str) -> tuple[bytes, str] | None:
        self.calls["get"] += 1
        return await super().get_tagged(key)

    async def swap(
        self, key: str, body: bytes, *, etag: str | None, content_type: str = "application/json"
    ) -> bool:
        self.calls["swap"] += 1
        return await super().swap(key, body, etag=etag, content_type=content_type)

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        self.calls["list"] += 1
        return await super().list(prefix, after=after)


@pytest.fixture
def counted(world: World) -> CountingBlobs:
    blobs = CountingBlobs()
    world.blobs = blobs
    return blobs


async def test_ten_thousand_jobs_are_accepted_with_a_write_per_hundred_and_ten_sends(
    world: World, counted: CountingBlobs
) -> None:
    batch = await world.intake().submit_batch([REQUEST] * 10_000, owner="alice")

    assert counted.calls == {"put": 101}  # 100 chunks of requests, then the record
    chunks = world.queue.take("intake")
    assert len(chunks) == 100  # the SQS adapter sends them 10 to a call
    assert chunks[0] == ExpandTask(batch_id=batch.batch_id, first=0, count=100)
    assert chunks[-1] == ExpandTask(batch_id=batch.batch_id, first=9_900, count=100)
    # A chunk becomes a submit message per job, each job created from its stored request.
    await world.research().run(chunks[-1])
    submits = world.queue.take("intake")
    assert submits == [SubmitTask(batch_id=batch.batch_id, n=n) for n in range(9_900, 10_000)]
    stored = await world.store.batch_request(batch, 9_999)
    assert stored == REQUEST


async def test_a_ten_thousand_job_batch_status_takes_five_reads_and_pages_its_jobs(
    world: World, counted: CountingBlobs
) -> None:
    batch = await world.intake().submit_batch([REQUEST] * 10_000, owner="alice")

    # As 10,000 jobs would have left the ledger: 0-5,999 done, 6,000-6,999 failed,
    # 7,000-7,499 cancelled, 7,500-8,999 running, the rest not created yet.
    def state_of(n: int) -> str:
        return (
            "done" if n < 6_000 else "failed" if n < 7_000 else "cancelled" if n < 7_500
            else "running"
        )  # fmt: skip

    for shard in range(keys.LEDGER_SHARDS):
        states = {str(n): state_of(n) for n in range(shard, 9_000, keys.LEDGER_SHARDS)}
        body = BatchLedger.model_validate({"states": states}).model_dump_json().encode()
        await world.blobs.replace(keys.batch_ledger(batch.batch_id, shard), body)
    counted.calls.clear()

    view = await world.store.batch_view(batch.batch_id, owner="alice")

    assert sum(counted.calls.values()) <= 5
    assert counted.calls == {"get": 5}  # the record and the ledger's four shards, at once
    assert view.counts == {
        "done": 6_000, "failed": 1_000, "cancelled": 500, "running": 1_500, "pending": 1_000
    }  # fmt: skip
    assert [j.n for j in view.jobs] == list(range(1_000))
    assert view.jobs[0].job_id == batch_job_id(batch.batch_id, 0)
    assert view.cursor == 999

    last = await world.store.batch_view(batch.batch_id, after=8_999)
    assert [(j.n, j.state) for j in last.jobs[:2]] == [(9_000, "pending"), (9_001, "pending")]
    assert last.cursor is None
    ended = await world.store.batch_view(
        batch.batch_id, after=6_990, limit=20, states=frozenset({"failed", "cancelled"})
    )
    assert [j.n for j in ended.jobs] == list(range(6_991, 7_011))
    assert ended.cursor == 7_010


async def test_simultaneous_and_repeated_notes_leave_each_job_in_its_latest_state(
    world: World,
) -> None:
    batch = await world.intake().submit_batch([REQUEST] * 200, owner="alice")
    place = [BatchPlace(batch.batch_id, n) for n in range(200)]
    # Every job noted running twice and ended at once, by 600 writers racing for 4 objects;
    # a late `running` (a redelivered submit) and a lesser end never take a later state back.
    notes: list[Any] = []
    ends: tuple[LedgerState, ...] = ("done", "failed", "cancelled")
    for n in range(200):
        end = ends[n % 3]
        notes += [
            world.store.note_batch_job(place[n], "running"),
            world.store.note_batch_job(place[n], end),
            world.store.note_batch_job(place[n], "running"),
        ]
    await asyncio.gather(*notes)
    await asyncio.gather(*(world.store.note_batch_job(place[n], "cancelled") for n in range(200)))

    view = await world.store.batch_view(batch.batch_id)

    assert [j.state for j in view.jobs] == [
        ("done", "failed", "cancelled")[n % 3] for n in range(200)
    ]
    assert view.counts == {"done": 67, "failed": 67, "cancelled": 66}


async def test_each_way_a_batch_job_ends_reaches_the_batch_status(world: World) -> None:
    good = ResearchRequest(question=QUESTION, sources=[world.serve("/a.html", PAGE)])
    unusable = ResearchRequest(question=QUESTION, sources=["http://pages.test/missing"])
    batch = await world.intake().submit_batch([good, unusable, good, good], owner="alice")
    (chunk,) = world.queue.take("intake")
    await world.research().run(chunk)  # type: ignore[arg-type]
    submits = world.queue.take("intake")
    for task in submits[:3]:
        await world.research().run(task)  # type: ignore[arg-type]
    assert (await world.store.batch_view(batch.batch_id)).counts == {
        "running": 2,
        "failed": 1,  # no source could be used
        "pending": 1,
    }
    await world.intake().cancel(batch_job_id(batch.batch_id, 2), owner="alice")
    # Job 3's submit message dies; job 0 runs to its report.
    await world.dead_letter().run(submits[3].model_dump_json(), "arn:IntakeDeadLetterQueue")
    await world.drain()

    view = await world.store.batch_view(batch.batch_id)
    assert [j.state for j in view.jobs] == ["done", "failed", "cancelled", "failed"]
    assert view.counts == {"done": 1, "failed": 2, "cancelled": 1}


async def test_a_dead_chunk_fails_the_jobs_it_never_created_and_leaves_the_rest(
    world: World,
) -> None:
    world.serve("/a", PAGE)
    batch = await world.intake().submit_batch([REQUEST] * 5, owner="alice")
    (chunk,) = world.queue.take("intake")
    await world.research().run(chunk)  # type: ignore[arg-type]
    first = world.queue.take("intake")[0]
    await world.research().run(first)  # type: ignore[arg-type] # job 0 exists, the rest never will

    marked = await world.dead_letter().run(chunk.model_dump_json(), "arn:IntakeDeadLetterQueue")

    assert marked is None
    ((_, dead),) = await world.store.dead_messages()
    assert dead.reason == (
        f"queuing jobs 1 to 5 of batch {batch.batch_id} failed repeatedly and was given up"
    )
    view = await world.store.batch_view(batch.batch_id)
    assert [j.state for j in view.jobs] == ["running", *["failed"] * 4]
    failure = await world.store.failure(batch_job_id(batch.batch_id, 4))
    assert failure is not None
    assert failure.reason == dead.reason


async def test_the_sweeper_notes_an_ended_job_its_ledger_missed(world: World) -> None:
    world.serve("/a", PAGE)
    batch = await world.intake().submit_batch([REQUEST], owner="alice")
    (chunk,) = world.queue.take("intake")
    await world.research().run(chunk)  # type: ignore[arg-type]
    job_id = batch_job_id(batch.batch_id, 0)
    await world.research().run(world.queue.take("intake")[0])  # type: ignore[arg-type]
    # The job failed, and the delivery that failed it crashed before its ledger note.
    await world.store.fail(
        JobFailure(job_id=job_id, stage="research", reason="lost its way", at=utcnow())
    )
    assert (await world.store.batch_view(batch.batch_id)).counts == {"running": 1}
    world.clock.advance(3_000)

    report = await Sweeper(world.store, stall_timeout_s=2_400, clock=world.clock).sweep()

    assert report.closed == 1
    assert (await world.store.batch_view(batch.batch_id)).counts == {"failed": 1}


async def test_a_batch_stored_before_the_ledger_still_runs_and_shows_its_jobs(
    world: World,
) -> None:
    """A batch written by the previous release (one object per request, no chunks)."""
    world.serve("/a", PAGE)
    batch = BatchRecord(batch_id="b" * 32, owner="alice", created_at=utcnow(), size=2)
    for n in range(2):
        body = REQUEST.model_dump_json().encode()
        await world.blobs.put(keys.batch_request(batch.batch_id, n), body)
    await world.blobs.put(keys.batch(batch.batch_id), batch.model_dump_json().encode())

    await world.research().run(SubmitTask(batch_id=batch.batch_id, n=1))

    view = await world.store.batch_view(batch.batch_id, owner="alice")
    assert [j.state for j in view.jobs] == ["pending", "running"]
    record = await world.store.job(batch_job_id(batch.batch_id, 1))
    assert (record.batch_id, record.batch_n) == (batch.batch_id, None)
    assert json.loads(await world.blobs.get(keys.batch(batch.batch_id)) or b"{}")["size"] == 2


async def test_a_ledger_note_that_loses_a_swap_reads_again_and_keeps_the_other_write() -> None:
    blobs = MemoryBlobStore()
    store = JobStore(blobs)
    place = BatchPlace("c" * 32, 1)
    key = keys.batch_ledger(place.batch_id, place.n)
    original = blobs.swap
    lost = {"count": 0}

    async def swap_losing_twice(
        key_: str, body: bytes, *, etag: str | None, content_type: str = "application/json"
    ) -> bool:
        if lost["count"] < 2:  # someone else writes first, twice
            lost["count"] += 1
            other = BatchLedger.model_validate({"states": {"5": "done"}})
            await blobs.replace(key_, other.model_dump_json().encode())
            return False
        return await original(key_, body, etag=etag, content_type=content_type)

    blobs.swap = swap_losing_twice  # type: ignore[method-assign,assignment]
    await store.note_batch_job(place, "running")

    ledger = BatchLedger.model_validate_json(blobs.objects[key])
    assert ledger.states == {"5": "done", "1": "running"}


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: WorldWiring(world))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://brief.test") as c:
        yield c


async def test_the_api_takes_a_large_batch_and_pages_its_status(
    client: httpx.AsyncClient,
) -> None:
    job = {"question": QUESTION, "sources": ["https://example.org/a"]}
    accepted = await client.post("/batches", json={"jobs": [job] * 2_500})
    assert accepted.status_code == 202, accepted.text
    path = accepted.headers["location"]

    first = (await client.get(path)).json()
    assert first["size"] == 2_500
    assert first["counts"] == {"pending": 2_500}
    assert [j["n"] for j in first["jobs"]] == list(range(1_000))
    following = (await client.get(path, params={"after": first["cursor"], "limit": 5})).json()
    assert [j["n"] for j in following["jobs"]] == [1_000, 1_001, 1_002, 1_003, 1_004]
    pending = await client.get(path, params={"state": ["pending", "done"], "after": 2_497})
    assert [j["n"] for j in pending.json()["jobs"]] == [2_498, 2_499]
    assert pending.json()["cursor"] is None

    wrong = await client.get(path, params={"state": "finished"})
    assert wrong.status_code == 422
    assert "state" in wrong.text
    too_many = await client.post("/batches", json={"jobs": [job] * 10_001})
    assert too_many.status_code == 422
    assert "10000" in too_many.text or "10,000" in too_many.text
