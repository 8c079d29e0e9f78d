"""Batches: the record and each request, stored before any of its jobs exists."""

from __future__ import annotations

from collections.abc import Sequence

from brief import keys
from brief.concurrency import all_of
from brief.errors import BatchNotFound
from brief.jobstore.objects import Objects
from brief.models import BatchRecord, ResearchRequest


class BatchRecords(Objects):
    """A batch's record and requests (its jobs are created one by one as messages arrive)."""

    async def put_batch(self, batch: BatchRecord, requests: Sequence[ResearchRequest]) -> None:
        """Store a batch and each of its requests (the submit messages name them by number)."""
        await all_of(
            *(self._put(keys.batch_request(batch.batch_id, n), r) for n, r in enumerate(requests))
        )
        await self._put(keys.batch(batch.batch_id), batch)

    async def batch(self, batch_id: str, *, owner: str | None = None) -> BatchRecord:
        """The batch; BatchNotFound if there is none, or it is not `owner`'s."""
        batch = await self._get(keys.batch(batch_id), BatchRecord)
        if batch is None or (owner is not None and batch.owner != owner):
            raise BatchNotFound(batch_id)
        return batch

    async def batch_request(self, batch_id: str, n: int) -> ResearchRequest | None:
        """Request `n` of a batch."""
        return await self._get(keys.batch_request(batch_id, n), ResearchRequest)
