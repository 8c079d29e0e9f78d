"""Dead letters, kept for an operator (`brief dlq show|redrive`)."""

from __future__ import annotations

import asyncio

from brief import keys
from brief.concurrency import all_of
from brief.jobstore.objects import Objects
from brief.models import DeadMessage


class DeadLetters(Objects):
    """Messages that exhausted their retries, by the queue they died on."""

    async def put_dead_message(self, dead: DeadMessage) -> bool:
        """Keep a dead message (once per SQS message: a redelivery writes nothing new)."""
        return await self._put(keys.dead(dead.queue, dead.message_id), dead)

    async def dead_messages(self, queue: str | None = None) -> list[tuple[str, DeadMessage]]:
        """Every kept dead message (of one queue, when given), each with its key."""
        listed = await self._blobs.list(keys.dead_queue(queue) if queue else keys.DEAD)
        bound = asyncio.Semaphore(32)

        async def read(key: str) -> DeadMessage | None:
            async with bound:
                return await self._get(key, DeadMessage)

        found = await all_of(*(read(k) for k in listed))
        return [(k, d) for k, d in zip(listed, found, strict=True) if d is not None]
