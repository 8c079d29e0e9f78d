"""Per-source progress events written in bursts: what a reader of the job's events gets, and
how many objects (S3 PUTs) it took."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from brief import keys
from brief.adapters.memory import MemoryBlobStore
from brief.errors import StorageUnavailable
from brief.eventbatch import EventBatch
from brief.jobstore import JobStore

JOB = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves a millisecond each time it is read."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def event_keys(blobs: MemoryBlobStore) -> list[str]:
    return sorted(k for k in blobs.objects if k.startswith(keys.events(JOB)))


def named(key: str) -> keys.EventName:
    name = keys.event_name(key)
    assert name is not None
    return name


async def test_a_burst_of_sources_costs_one_object_and_reads_back_as_one_event_each() -> None:
    blobs = MemoryBlobStore()
    clock = Clock()
    batch = EventBatch(JobStore(blobs), JOB, clock, every_s=60)
    for index in (2, 0, 1):
        batch.add("source_fetched", index, clock(), "ok")
    batch.add("source_failed", 3, clock(), "the page answered 404 Not Found")
    await batch.close()

    names = event_keys(blobs)
    assert len(names) == 2  # one per kind
    assert [named(n).indexes for n in names if "fetched" in n] == [(0, 1, 2)]
    events = [e for _, e in await JobStore(blobs).events(JOB)]
    fetched = [(e.kind, e.index, e.detail) for e in events if e.kind == "source_fetched"]
    assert fetched == [("source_fetched", i, "ok") for i in (2, 0, 1)]  # as they happened
    failed = [(e.index, e.detail) for e in events if e.kind == "source_failed"]
    assert failed == [(3, "the page answered 404 Not Found")]
    # Listed where it was written: after each of its sources' events happened.
    written = keys.from_micros(named(next(n for n in names if "fetched" in n)).micros)
    assert all(e.at < written for e in events if e.kind == "source_fetched")


async def test_one_event_alone_is_an_event_of_its_own_keyed_when_written() -> None:
    blobs = MemoryBlobStore()
    clock = Clock()
    batch = EventBatch(JobStore(blobs), JOB, clock)
    at = clock()
    batch.add("summary_done", 4, at)
    await batch.close()

    [key] = event_keys(blobs)
    name = keys.event_name(key)
    assert name is not None
    assert (name.kind, name.indexes) == ("summary_done", (4,))
    assert name.micros > keys.micros(at)  # keyed when written, as a group is
    [(_, event)] = await JobStore(blobs).events(JOB)
    assert (event.index, event.at) == (4, at)


async def test_a_slow_source_is_written_within_the_interval_not_at_close() -> None:
    blobs = MemoryBlobStore()
    clock = Clock()
    batch = EventBatch(JobStore(blobs), JOB, clock, every_s=0.01)
    batch.add("source_fetched", 0, clock(), "ok")
    for _ in range(500):  # the write comes after 10 ms, however busy the machine is
        if blobs.objects:
            break
        await asyncio.sleep(0.01)
    assert len(event_keys(blobs)) == 1
    batch.add("source_fetched", 1, clock(), "ok")
    await batch.close()
    assert len(event_keys(blobs)) == 2


async def test_nothing_to_write_writes_nothing() -> None:
    blobs = MemoryBlobStore()
    await EventBatch(JobStore(blobs), JOB, Clock()).close()
    assert blobs.objects == {}


async def test_a_failed_write_is_logged_and_does_not_fail_the_stage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs = MemoryBlobStore()

    async def refuse(key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        raise StorageUnavailable("S3 is down")

    blobs.put = refuse  # type: ignore[method-assign]
    clock = Clock()
    batch = EventBatch(JobStore(blobs), JOB, clock)
    batch.add("source_fetched", 0, clock(), "ok")
    batch.add("source_fetched", 1, clock(), "ok")
    await batch.close()  # no error

    assert "could not write progress events" in caplog.text
