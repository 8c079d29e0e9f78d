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

A stream whose cursor is at or past the job's terminal event has nothing more to send: it is
answered `204 No Content`, which is how SSE tells an EventSource to stop reconnecting (it
would otherwise come back after the terminal event forever). One listing of the job's event
keys, when the stream opens, tells; the polls that follow list only what is after the cursor.

A cursor is an event key: `{16-digit µs}-{kind}[-{index}].json`. One that is not, or whose
time falls outside the job's lifetime (before it was created, or after now, give or take a
minute of clock skew between writers), names no event of this job: a `400` problem, for the
page and the stream alike, rather than a page that is always empty or a stream that waits
ten minutes for events that cannot come.

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
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from brief.api.deps import CallerDep, JobIdPath, StoreDep
from brief.api.negotiation import prefers
from brief.api.problems import problem, problems
from brief.errors import RetryableError
from brief.jobstore import JobStore
from brief.keys import EVENT_CURSOR, micros
from brief.models import Event, EventKind, JobRecord, utcnow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=problems(401, 422, 503))

EVENT_STREAM = "text/event-stream"
TERMINAL_EVENTS: frozenset[str] = frozenset({"report_ready", "job_failed", "job_cancelled"})
REVIVED = "job_redriven"  # after a terminal job_failed, the job runs again
CURSOR_PATTERN = f"^{EVENT_CURSOR.pattern}$"
_EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))
CLOCK_SKEW_S = 60.0  # how far writers' clocks may stray from the API's and still be believed


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
        204: {
            "description": "A stream's cursor is at or past the job's terminal event: nothing "
            "more will come (an EventSource stops reconnecting)."
        },
        **problems(400, 404),
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
        Query(
            description="Only events after this cursor (an event's id).",
            json_schema_extra={"pattern": CURSOR_PATTERN},  # checked below: a 400, not a 422
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume a stream after this event (it takes precedence over `after`).",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
    accept: Annotated[str, Header()] = "application/json",
) -> EventPage | Response:
    """Progress events in order; pass the returned cursor as `after` to get only newer ones.

    With `Accept: text/event-stream`, a live stream of server-sent events instead: `id` is
    the event's cursor, `event` its kind, `data` the event as JSON. It resumes after
    `Last-Event-ID` (or `after`) and ends after `report_ready`, `job_failed` or
    `job_cancelled`; a stream that resumes after one of those is a `204`. A cursor that is
    not an event id of this job is a `400`.
    """
    record = await store.job(job_id, owner=caller)
    streaming = wants_event_stream(accept)
    # The stream resumes after the header (EventSource adds it to its first URL); the page
    # reads only `after`.
    name, cursor = (
        ("Last-Event-ID", last_event_id) if streaming and last_event_id else ("after", after)
    )
    if cursor is not None and (wrong := cursor_fault(cursor, record, policy.clock())):
        return problem(400, "Unknown event cursor", f"{name} {wrong}.")
    if not streaming:
        events = await store.events(job_id, after=cursor)
        return EventPage(events=[e for _, e in events], cursor=events[-1][0] if events else cursor)
    if (
        cursor is not None
        and (end := ended_at(await store.event_cursors(job_id)))
        and cursor >= end
    ):
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    # Mangum (API Gateway) buffers a response until it ends: there, make one pass and end.
    buffered = "aws.event" in request.scope
    stream = EventStream(store, job_id, policy, single_pass=buffered)
    return StreamingResponse(
        stream.frames(cursor),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


def cursor_fault(cursor: str, record: JobRecord, now: datetime) -> str | None:
    """Why `cursor` cannot name an event of the job (None when it can): not an event key,
    or a time outside the job's lifetime. No storage is read."""
    match = EVENT_CURSOR.fullmatch(cursor)
    if match is None or match.group(2) not in _EVENT_KINDS:
        return "is not an event id (they look like 1717171717171717-job_created.json)"
    at = int(match.group(1))
    skew = int(CLOCK_SKEW_S * 1_000_000)
    if at < micros(record.created_at) - skew:
        return "names no event of this job: it is from before the job was created"
    if at > micros(now) + skew:
        return "names no event of this job: it is from the future"
    return None


def ended_at(cursors: Sequence[str]) -> str | None:
    """The cursor of the event that ended the job (its last terminal event, unless the job
    was revived after it), or None while the job has not ended."""
    end: str | None = None
    for cursor in cursors:
        match = EVENT_CURSOR.fullmatch(cursor)
        kind = match.group(2) if match else ""
        if kind in TERMINAL_EVENTS:
            end = cursor
        elif kind == REVIVED:
            end = None
    return end


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
            for n, (key, event) in enumerate(ready):
                # Events stored as one object share its cursor: only the last carries it, so
                # a stream that drops within them resumes before them, not past them.
                whole = n + 1 == len(ready) or ready[n + 1][0] != key
                yield frame(key if whole else None, event)
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


def frame(cursor: str | None, event: Event) -> str:
    """One server-sent event: its cursor as the id (None: none), its kind as the event name,
    JSON data."""
    line = f"id: {cursor}\n" if cursor is not None else ""
    return f"{line}event: {event.kind}\ndata: {event.model_dump_json()}\n\n"


def wants_event_stream(accept: str) -> bool:
    """Whether an `Accept` header ranks text/event-stream at least as high as JSON."""
    return prefers(accept, EVENT_STREAM)
