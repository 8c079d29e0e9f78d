"""A job's progress events: a cursor page as JSON, or a live stream of server-sent events.

`GET /jobs/{id}/events` answers a page of events and the cursor of the next call by default.
A client that sends `Accept: text/event-stream` gets the same events, in the same order, as
a stream instead: each event as `id: <cursor>`, `event: <kind>` and `data: <the event's
JSON>`, where the id is exactly the cursor `?after=` takes. A stream resumes after the
`Last-Event-ID` header (what EventSource sends when it reconnects) or, failing that,
`?after=`, so a reconnecting client gets no gap and no duplicate.

The stream polls the job's events in S3 (every 250 ms, backing off to 1 s once the job has
been quiet for 5 s), sends a comment as a heartbeat when it has been quiet for 15 s, and ends
after the job's terminal event or after at most 10 minutes (the client reconnects with
`Last-Event-ID`). A client that hangs up stops the polling at once: the server cancels the
stream. Behind API Gateway (Mangum buffers the whole response) a stream makes one pass and
ends, with `retry: 1000`, so an EventSource there polls once a second on its own.

Events are written by many workers, each stamping its event's key before its write lands,
so an event can appear just *behind* a newer one that landed first. A cursor that had
already passed it would skip it. The stream therefore holds back events younger than
`settle_s` (0.5 s) until writes in flight have landed; `job_created` is exempt (it is always
the first event and is written before the job is queued), so the first event is immediate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from brief.api.deps import CallerDep, StoreDep
from brief.api.negotiation import prefers
from brief.api.problems import problems
from brief.errors import RetryableError
from brief.jobstore import JobStore
from brief.models import Event, utcnow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=problems(401, 422, 503))

EVENT_STREAM = "text/event-stream"
TERMINAL_EVENTS: frozenset[str] = frozenset({"report_ready", "job_failed", "job_cancelled"})
_CURSOR = r"^[0-9a-z_\-.]+$"

JobIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The job's id.")]


@dataclass(frozen=True)
class StreamPolicy:
    """How a stream of events polls, keeps alive and ends; tests shorten every interval."""

    poll_s: float = 0.25  # between polls while the job is busy
    idle_after_s: float = 5.0  # quiet for this long, the stream backs off...
    idle_poll_s: float = 1.0  # ...doubling its gap between polls up to this
    heartbeat_s: float = 15.0  # a comment after this long without writing anything
    max_duration_s: float = 600.0  # then the stream ends; the client resumes with Last-Event-ID
    settle_s: float = 0.5  # events younger than this wait for earlier writes still in flight
    retry_ms: int = 1_000  # the reconnection delay the client is told to use
    clock: Callable[[], datetime] = utcnow  # the clock the writers stamp event keys with


def get_stream_policy() -> StreamPolicy:
    """The stream policy; tests override this dependency."""
    return StreamPolicy()


StreamPolicyDep = Annotated[StreamPolicy, Depends(get_stream_policy)]


class EventPage(BaseModel):
    """A page of events and the cursor to ask for the next one with `?after=`."""

    events: list[Event]
    cursor: str | None


@router.get(
    "/{job_id}/events",
    response_model=EventPage,
    responses={
        200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}},
        **problems(404),
    },
)
async def get_events(
    job_id: JobIdPath,
    request: Request,
    store: StoreDep,
    caller: CallerDep,
    policy: StreamPolicyDep,
    after: Annotated[
        str | None,
        Query(max_length=200, pattern=_CURSOR, description="Only events after this cursor."),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=200,
            pattern=_CURSOR,
            description="Resume a stream after this event (it takes precedence over `after`).",
        ),
    ] = None,
    accept: Annotated[str, Header()] = "application/json",
) -> EventPage | Response:
    """Progress events in order; pass the returned cursor as `after` to get only newer ones.

    With `Accept: text/event-stream`, a live stream of server-sent events instead: `id` is
    the event's cursor, `event` its kind, `data` the event as JSON. It resumes after
    `Last-Event-ID` (or `after`) and ends after `report_ready`, `job_failed` or
    `job_cancelled`.
    """
    await store.job(job_id, owner=caller)
    if not wants_event_stream(accept):
        events = await store.events(job_id, after=after)
        cursor = events[-1][0] if events else after
        return EventPage(events=[e for _, e in events], cursor=cursor)
    # Mangum (API Gateway) buffers a response until it ends: there, make one pass and end.
    buffered = "aws.event" in request.scope
    stream = EventStream(store, job_id, policy, single_pass=buffered)
    return StreamingResponse(
        stream.frames(last_event_id or after),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


class EventStream:
    """One client's stream of a job's events, resuming after a cursor."""

    def __init__(
        self, store: JobStore, job_id: str, policy: StreamPolicy, *, single_pass: bool = False
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._policy = policy
        self._single_pass = single_pass

    async def frames(self, after: str | None) -> AsyncIterator[str]:
        """The stream's text: a `retry` line, then each event, heartbeats while quiet."""
        policy = self._policy
        cursor = after
        started = last_write = last_event = time.monotonic()
        interval = policy.poll_s
        yield f"retry: {policy.retry_ms}\n\n"
        while True:
            try:
                page = await self._store.events(self._job_id, after=cursor)
            except RetryableError as exc:  # storage busy: keep the stream, try again later
                log.warning("event stream: storage unavailable: %s", exc)
                page = []
            ready, wait_s = settled(page, policy.clock(), policy.settle_s)
            for key, event in ready:
                yield frame(key, event)
                cursor = key
                if event.kind in TERMINAL_EVENTS:
                    return
            now = time.monotonic()
            if ready:
                last_write = last_event = now
            if page or now - last_event < policy.idle_after_s:
                interval = policy.poll_s
            else:  # quiet for a while (a long model call, a stuck job): poll less often
                interval = min(interval * 2, policy.idle_poll_s)
            if self._single_pass or now - started >= policy.max_duration_s:
                return
            if now - last_write >= policy.heartbeat_s:
                yield ": heartbeat\n\n"
                last_write = now
            delay = interval if wait_s is None else min(max(wait_s, 0.005), policy.poll_s)
            delay = min(
                delay,
                max(policy.heartbeat_s - (now - last_write), 0.0),
                max(policy.max_duration_s - (now - started), 0.0),
            )
            await asyncio.sleep(delay)


def settled(
    page: Sequence[tuple[str, Event]], now: datetime, settle_s: float
) -> tuple[list[tuple[str, Event]], float | None]:
    """The leading events of `page` old enough to send in order, and how long until the
    first held-back one is (None when none is held back)."""
    horizon = int(now.timestamp() * 1_000_000) - int(settle_s * 1_000_000)
    for n, (key, event) in enumerate(page):
        micros = _stamp(key)
        if event.kind != "job_created" and micros is not None and micros > horizon:
            return list(page[:n]), (micros - horizon) / 1_000_000
    return list(page), None


def _stamp(cursor: str) -> int | None:
    """The microsecond timestamp an event's cursor starts with."""
    head = cursor.partition("-")[0]
    return int(head) if head.isdigit() else None


def frame(cursor: str, event: Event) -> str:
    """One server-sent event: its cursor as the id, its kind as the event name, JSON data."""
    return f"id: {cursor}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"


def wants_event_stream(accept: str) -> bool:
    """Whether an `Accept` header ranks text/event-stream at least as high as JSON."""
    return prefers(accept, EVENT_STREAM)
