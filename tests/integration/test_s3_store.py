"""S3BlobStore against moto's server: conditional writes, reads and listing as S3 does them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from brief.adapters.s3 import S3BlobStore
from brief.errors import StorageUnavailable
from brief.jobstore import BatchPlace, JobStore


async def test_put_creates_once_and_reports_the_second_write(s3: Any, bucket: str) -> None:
    store = S3BlobStore(s3, bucket)
    assert await store.put("jobs/a/request.json", b"first") is True
    assert await store.put("jobs/a/request.json", b"second") is False
    assert await store.get("jobs/a/request.json") == b"first"


async def test_racing_writers_exactly_one_wins(s3: Any, bucket: str) -> None:
    store = S3BlobStore(s3, bucket)
    results = await asyncio.gather(
        *(store.put("jobs/a/combine.claim", str(i).encode()) for i in range(10))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get("jobs/a/combine.claim") == str(winner).encode()


async def test_swap_writes_only_over_the_version_it_read(s3: Any, bucket: str) -> None:
    store = S3BlobStore(s3, bucket)
    key = "batches/b/ledger/0.json"
    assert await store.get_tagged(key) is None
    assert await store.swap(key, b"first", etag=None) is True
    assert await store.swap(key, b"again", etag=None) is False  # it exists now
    tagged = await store.get_tagged(key)
    assert tagged is not None
    body, etag = tagged
    assert body == b"first"
    assert await store.swap(key, b"second", etag=etag) is True
    assert await store.swap(key, b"stale", etag=etag) is False  # read before "second"
    assert await store.get(key) == b"second"


async def test_racing_ledger_notes_on_s3_all_land(s3: Any, bucket: str) -> None:
    """Forty jobs of a batch noted at once, ten to each shard of its ledger."""
    store = JobStore(S3BlobStore(s3, bucket))
    await asyncio.gather(
        *(store.note_batch_job(BatchPlace("b" * 32, n), "done") for n in range(40))
    )
    ledger = await store.ledger("b" * 32)
    assert ledger == dict.fromkeys(range(40), "done")


async def test_get_of_a_missing_key_is_none(s3: Any, bucket: str) -> None:
    assert await S3BlobStore(s3, bucket).get("jobs/none.json") is None


async def test_list_is_sorted_paginated_and_starts_after_a_cursor(s3: Any, bucket: str) -> None:
    store = S3BlobStore(s3, bucket)
    keys = [f"jobs/j/events/{i:04d}.json" for i in range(1100)]  # more than one page of 1000
    await asyncio.gather(*(store.put(k, b"{}") for k in keys))
    await store.put("jobs/other/x.json", b"{}")
    assert await store.list("jobs/j/events/") == keys
    assert await store.list("jobs/j/events/", after=keys[1049]) == keys[1050:]


async def test_a_missing_bucket_is_a_retryable_storage_error(s3: Any) -> None:
    store = S3BlobStore(s3, "brief-no-such-bucket")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        await store.put("k", b"v")
