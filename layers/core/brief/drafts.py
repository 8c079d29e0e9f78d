"""The report's draft: the answer's text as a streaming combine model writes it, for readers
watching the job (the web page, `brief research`, `GET /jobs/{id}/events`).

Each `report_text` event carries the text added since the last one, and where it starts
(`offset`); when a retried model call starts the answer over, the next event starts again
at offset 0 with the whole text. At most one event every `every_s`, and at most one write in
flight: a stream of tokens costs about one S3 PUT a second, and the model never waits for
S3. The draft is never the answer: the report written at the end (its citations checked)
replaces it at `report_ready`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime

from brief.jobstore import JobStore

log = logging.getLogger(__name__)

DRAFT_EVERY_S = 1.0
"""The default gap between two `report_text` events (`BRIEF_REPORT_DRAFT_EVERY_S`)."""


class Draft:
    """`on_text` for one combine: turns the text so far into `report_text` events."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        clock: Callable[[], datetime],
        every_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._clock = clock
        self._every_s = every_s
        self._monotonic = monotonic
        self._latest = ""
        self._sent = ""
        self._last_write = -math.inf
        self._writing: asyncio.Task[None] | None = None

    async def update(self, text: str) -> None:
        """The answer so far; written now if the last write is done and `every_s` old."""
        self._latest = text
        if self._every_s <= 0 or (self._writing is not None and not self._writing.done()):
            return
        if self._monotonic() - self._last_write >= self._every_s:
            self._last_write = self._monotonic()
            self._writing = asyncio.ensure_future(self._write())

    async def close(self) -> None:
        """Wait for the write in flight, if any (the report follows; the rest of the draft
        is not written)."""
        if self._writing is not None:
            await self._writing

    async def _write(self) -> None:
        text, sent = self._latest, self._sent
        offset, added = (len(sent), text[len(sent) :]) if text.startswith(sent) else (0, text)
        if not added:
            return
        try:
            await self._store.event(
                self._job_id, "report_text", self._clock(), text=added, offset=offset
            )
        except Exception as exc:  # a draft is a courtesy: its loss must not fail the report
            log.warning("could not write the report's draft", extra={"reason": str(exc)})
            return
        self._sent = text
