"""A job's timeline: progress events, and why each failed delivery of a step failed."""

from __future__ import annotations

from datetime import datetime

from brief import keys
from brief.concurrency import all_of
from brief.jobstore.objects import Objects
from brief.models import (
    Event,
    EventGroup,
    EventItem,
    EventKind,
    ModelRetry,
    ModelWait,
    StepError,
)


class EventLog(Objects):
    """Events keyed by time (a listing is the timeline; a key is a cursor)."""

    async def event(
        self,
        job_id: str,
        kind: EventKind,
        at: datetime,
        *,
        index: int | None = None,
        detail: str | None = None,
        retry: ModelRetry | None = None,
        text: str | None = None,
        offset: int | None = None,
        written_at: datetime | None = None,
    ) -> None:
        """Append a progress event; its key sorts by time (`written_at` when given, else
        `at`), so a listing is the timeline."""
        event = Event(
            job_id=job_id,
            kind=kind,
            at=at,
            index=index,
            detail=detail,
            retry=retry,
            text=text,
            offset=offset,
        )
        await self._put(keys.event(job_id, written_at or at, kind, index), event)

    async def events_together(
        self, job_id: str, kind: EventKind, at: datetime, items: list[EventItem]
    ) -> None:
        """Append one event per item as one object (one PUT): several sources' progress of
        one stage. A single item is stored as an event of its own. Either is keyed by `at`,
        when it is written (each item keeps its own time): a key never sorts before one
        written earlier by more than the event stream's settling time allows."""
        if len(items) == 1:
            item = items[0]
            await self.event(
                job_id, kind, item.at, index=item.index, detail=item.detail, written_at=at
            )
            return
        group = EventGroup(job_id=job_id, kind=kind, at=at, items=items)
        await self._put(keys.event(job_id, at, kind, sorted(i.index for i in items)), group)

    async def has_terminal_event(self, job_id: str, kind: EventKind) -> bool:
        """Whether the job's events list `kind` since it last ran again (`job_redriven`): a
        redelivery that finds the report or the failure already stored asks, since the crash
        that brought it back may have come before the event that ends every stream."""
        listed = False
        for cursor in await self.event_cursors(job_id):
            name = cursor.partition("-")[2]
            if name == f"{kind}.json":
                listed = True
            elif name == "job_redriven.json":
                listed = False
        return listed

    async def events(self, job_id: str, *, after: str | None = None) -> list[tuple[str, Event]]:
        """Events in order, each with its cursor; only those after `after` when given. An
        object that holds several sources' events gives one event each, under its cursor."""
        prefix = keys.events(job_id)
        start = f"{prefix}{after}" if after else None
        listed = await self._blobs.list(prefix, after=start)
        found = await all_of(*(self._events_at(k) for k in listed))
        return [
            (k.removeprefix(prefix), e) for k, es in zip(listed, found, strict=True) for e in es
        ]

    async def _events_at(self, key: str) -> list[Event]:
        """The event stored at `key`, or each of a group's (its key names several sources)."""
        name = keys.event_name(key)
        if name is not None and len(name.indexes) > 1:
            group = await self._get(key, EventGroup)
            return group.each() if group else []
        event = await self._get(key, Event)
        return [event] if event else []

    async def event_cursors(self, job_id: str) -> list[str]:
        """Every event's cursor, in order, from one listing (no event is read)."""
        prefix = keys.events(job_id)
        return [k.removeprefix(prefix) for k in await self._blobs.list(prefix)]

    async def put_step_error(self, error: StepError) -> None:
        """Keep why a delivery of a step failed (one object per delivery, by time)."""
        await self._put(keys.error(error.job_id, error.step, error.index, error.at), error)

    async def step_errors(self, job_id: str, step: str, index: int | None) -> list[StepError]:
        """Why each failed delivery of a step failed, oldest first."""
        listed = await self._blobs.list(keys.errors(job_id, step, index))
        return [e for e in await self._get_each(listed, StepError) if e is not None]

    async def _waits(self, at_keys: dict[int | None, str]) -> dict[int | None, ModelWait]:
        """The waits the `model_retry` events at `at_keys` describe, by source index (None:
        the combine's)."""
        events = await self._get_each(list(at_keys.values()), Event)
        return {
            index: ModelWait(**event.retry.model_dump(), at=event.at, detail=event.detail or "")
            for index, event in zip(at_keys, events, strict=True)
            if event is not None and event.retry is not None
        }
