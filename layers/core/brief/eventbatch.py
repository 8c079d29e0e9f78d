"""Per-source progress events of one job's stage, written together.

Every source of a job is fetched at once, and its summaries often arrive in one SQS batch,
so their progress events come in bursts: five sources fetched within 200 ms cost five PUTs,
each on the stage's path, for an event stream that reads them four times a second. An
`EventBatch` gathers them and writes each burst as one object (`Event.items`; readers still
get one event per source, `EventLog.events`): at most one write every `every_s` while the
stage runs, and whatever is left when it closes. A job's five sources then cost one PUT for
their `source_fetched` events, not five, and a slow source still shows within `every_s`.

Progress is not state (a job's state and its sources' are read from what the stages store),
so a write that fails is logged, not raised: it must not fail the work it describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from brief.jobstore import JobStore
from brief.models import EventItem, EventKind

log = logging.getLogger(__name__)

EVENTS_EVERY_S = 0.25
"""The longest a source's progress event waits for others to share its write: the event
stream's own poll interval, so a reader sees no difference."""


class EventBatch:
    """One job's per-source events of one stage, written in bursts (one per stage run)."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        clock: Callable[[], datetime],
        every_s: float = EVENTS_EVERY_S,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._clock = clock
        self._every_s = every_s
        self._pending: dict[EventKind, list[EventItem]] = {}
        self._timer: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def add(self, kind: EventKind, index: int, at: datetime, detail: str | None = None) -> None:
        """Queue source `index`'s event; it is written within `every_s`, or at `close`."""
        self._pending.setdefault(kind, []).append(EventItem(index=index, at=at, detail=detail))
        if self._timer is None or self._timer.done():
            self._timer = asyncio.ensure_future(self._after_wait())

    async def close(self) -> None:
        """Write every event still queued (the stage is done with the batch)."""
        self._closing.set()
        if self._timer is not None:
            await self._timer
        await self._write()  # any added while the last write was in flight

    async def _after_wait(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # the wait is over: write what came
                await asyncio.wait_for(self._closing.wait(), self._every_s)
            await self._write()
            if not self._pending or self._closing.is_set():
                return  # nothing came during the write, or `close` writes what did

    async def _write(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        at = self._clock()
        try:
            await asyncio.gather(
                *(
                    self._store.events_together(self._job_id, kind, at, items)
                    for kind, items in pending.items()
                )
            )
        except Exception as exc:  # progress is a courtesy: its loss must not fail the stage
            log.warning("could not write progress events", extra={"reason": str(exc)})
