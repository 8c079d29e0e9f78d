"""Batches: the record and its requests in chunks, stored before any of its jobs exists, and
the ledger of its jobs' states, which a batch's status reads in a handful of calls."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from brief import keys
from brief.concurrency import each_bounded
from brief.errors import BatchNotFound, StorageUnavailable
from brief.jobstore.objects import Objects
from brief.models import (
    BatchChunk,
    BatchLedger,
    BatchRecord,
    JobRecord,
    JobState,
    LedgerState,
    ResearchRequest,
)

CHUNK_SIZE = 100
"""Requests per chunk object: 10 writes accept 1,000 jobs; a job's creation reads one chunk."""

# A later state replaces an earlier one, never the reverse: the order `state_from_keys`
# gives them when a job has several (a report wins over a failure, a failure over a cancel).
_RANK: dict[LedgerState, int] = {"running": 0, "cancelled": 1, "failed": 2, "done": 3}
_SWAP_TRIES = 12  # with full-jitter backoff up to 1 s: a few seconds of contention at most


def ledger_state(state: JobState) -> LedgerState:
    """How a batch's status names a job in `state`: its end, or `running` until then."""
    if state == "done" or state == "failed" or state == "cancelled":
        return state
    return "running"


@dataclass(frozen=True, slots=True)
class BatchPlace:
    """Where a job sits in a batch: the batch and the job's number in it."""

    batch_id: str
    n: int

    @classmethod
    def of(cls, record: JobRecord) -> BatchPlace | None:
        """The job's place, if it belongs to a batch that keeps a ledger."""
        if record.batch_id is None or record.batch_n is None:
            return None
        return cls(record.batch_id, record.batch_n)


class BatchRecords(Objects):
    """A batch's record, requests and ledger (its jobs are created one by one as messages
    arrive)."""

    async def put_batch(self, batch: BatchRecord, requests: Sequence[ResearchRequest]) -> None:
        """Store a batch's requests in chunks of `batch.chunk_size`, then its record: a
        stored record means every chunk is there."""
        size = batch.chunk_size or CHUNK_SIZE

        async def chunk(first: int) -> None:
            body = BatchChunk(first=first, requests=list(requests[first : first + size]))
            await self._put(keys.batch_chunk(batch.batch_id, first // size), body)

        await each_bounded(range(0, len(requests), size), chunk, 16)
        await self._put(keys.batch(batch.batch_id), batch)

    async def batch(self, batch_id: str, *, owner: str | None = None) -> BatchRecord:
        """The batch; BatchNotFound if there is none, or it is not `owner`'s."""
        batch = await self._get(keys.batch(batch_id), BatchRecord)
        if batch is None or (owner is not None and batch.owner != owner):
            raise BatchNotFound(batch_id)
        return batch

    async def batch_request(self, batch: BatchRecord, n: int) -> ResearchRequest | None:
        """Request `n` of a batch (None: it has no such request)."""
        if batch.chunk_size is None:
            return await self._get(keys.batch_request(batch.batch_id, n), ResearchRequest)
        chunk = await self._get(keys.batch_chunk(batch.batch_id, n // batch.chunk_size), BatchChunk)
        if chunk is None or not 0 <= n - chunk.first < len(chunk.requests):
            return None
        return chunk.requests[n - chunk.first]

    async def ledger(self, batch_id: str) -> dict[int, LedgerState]:
        """Every started job's state, by its number: one read per shard, at once."""
        shards = await self._get_each(
            [keys.batch_ledger(batch_id, k) for k in range(keys.LEDGER_SHARDS)], BatchLedger
        )
        return {int(n): s for shard in shards if shard for n, s in shard.states.items()}

    async def note_batch_job(self, place: BatchPlace | None, state: LedgerState) -> None:
        """Record that job `place.n` of its batch is `state` (nothing if it has no place),
        unless its ledger already holds as late a state: read the shard, change it, swap
        it in if no one else wrote meanwhile, else read again. Idempotent, so every
        delivery that ends a job (the first, or a redelivery after a crash) notes it."""
        if place is None:
            return
        key = keys.batch_ledger(place.batch_id, place.n)
        for attempt in range(_SWAP_TRIES):
            tagged = await self._blobs.get_tagged(key)
            ledger = BatchLedger.model_validate_json(tagged[0]) if tagged else BatchLedger()
            held = ledger.states.get(str(place.n))
            if held is not None and _RANK[held] >= _RANK[state]:
                return
            updated = BatchLedger(states={**ledger.states, str(place.n): state})
            body = updated.model_dump_json().encode()
            if await self._blobs.swap(key, body, etag=tagged[1] if tagged else None):
                return
            await asyncio.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise StorageUnavailable(f"the ledger {key} kept changing under {_SWAP_TRIES} writes")
