"""A job's events through the API: the cursor page, and the same events as a live stream.

Streams are read two ways: through httpx's ASGITransport (which hands back the body once the
stream ends, so it shows what a whole stream holds), and through `LiveStream`, a bare ASGI
client that sees each chunk the moment the app sends it and can hang up.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brief.adapters.memory import MemoryBlobStore
from brief.api import create_app
from brief.api.events import StreamPolicy, get_stream_policy, wants_event_stream
from brief_cli.client import BriefClient

from .api_world import WorldWiring, create
from .api_world import sources as api_sources
from .world import World

SSE = {"accept": "text/event-stream"}
FAST = StreamPolicy(poll_s=0.005, idle_poll_s=0.02, settle_s=0.0, max_duration_s=5.0)
# A frame's id is missing where events stored as one object share its cursor (the last has it).
FRAME = re.compile(r"(?:id: (?P<id>\S+)\n)?event: (?P<event>[a-z_]+)\ndata: (?P<data>.+)\n\n")


def app_with(world: World, policy: StreamPolicy = FAST) -> FastAPI:
    wiring = WorldWiring(world)
    app = create_app(lambda: wiring)
    app.dependency_overrides[get_stream_policy] = lambda: policy
    return app


@pytest.fixture
def app(world: World) -> FastAPI:
    return app_with(world)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://brief.test") as c:
        yield c


@dataclass(frozen=True)
class Frame:
    id: str  # "" when the frame has none
    event: str
    data: dict[str, Any]


def frames(text: str) -> list[Frame]:
    """The events of a stream's text; asserts nothing else is in it but retry and comments."""
    found = [Frame(m["id"] or "", m["event"], json.loads(m["data"])) for m in FRAME.finditer(text)]
    rest = FRAME.sub("", text)
    assert re.fullmatch(r"(retry: \d+\n\n|: heartbeat\n\n)*", rest), rest
    return found


def sources(world: World, count: int = 3) -> list[str]:
    return api_sources(world, count)


async def poll_all(client: httpx.AsyncClient, job_id: str, after: str | None = None) -> list[Any]:
    """Every event by cursor polling, as a client of the JSON page would collect them."""
    events: list[Any] = []
    while True:
        params = {"after": after} if after else {}
        body = (await client.get(f"/jobs/{job_id}/events", params=params)).json()
        if not body["events"]:
            return events
        events += body["events"]
        after = body["cursor"]


class LiveStream:
    """A bare ASGI client: each body chunk as the app sends it; `hang_up()` disconnects."""

    def __init__(self, app: ASGIApp, path: str, headers: dict[str, str] | None = None) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._hung_up = asyncio.Event()
        self._requested = False
        target, _, query = path.partition("?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or SSE).items()],
            "server": ("brief.test", 80),
            "client": ("127.0.0.1", 50000),
        }
        self.task: asyncio.Task[None] = asyncio.create_task(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        await app(scope, self._receive, self._send)

    async def _receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._hung_up.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            if message.get("body"):
                await self.chunks.put(message["body"])
            if not message.get("more_body", False):
                await self.chunks.put(None)

    async def next_frame(self, timeout_s: float = 2.0) -> Frame | None:
        """The next event the stream sends (skipping retry lines and comments); None at its end."""
        while True:
            chunk = await asyncio.wait_for(self.chunks.get(), timeout_s)
            if chunk is None:
                return None
            found = frames(chunk.decode())
            if found:
                assert len(found) == 1, "one event per chunk"
                return found[0]

    def hang_up(self) -> None:
        self._hung_up.set()


# The stream and the page agree


async def test_a_stream_sends_each_event_as_it_happens_and_ends_after_the_report(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))
    live = LiveStream(app, f"/jobs/{job_id}/events")

    first = await live.next_frame()
    assert first is not None
    assert first.event == "job_created"
    assert live.status == 200
    assert live.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert live.headers["cache-control"] == "no-cache, no-transform"
    assert live.chunks.empty()  # nothing else has happened yet, and the stream is still open
    assert not live.task.done()

    await world.drain()
    rest = []
    while (frame := await live.next_frame()) is not None:
        rest.append(frame)
    await live.task

    kinds = [f.event for f in rest]
    assert kinds[0] == "retrieval_started"
    assert kinds[-1] == "report_ready"
    assert kinds.count("source_fetched") == kinds.count("summary_done") == 3
    assert all(f.data["kind"] == f.event and f.data["job_id"] == job_id for f in rest)


async def test_stream_and_cursor_polling_give_the_same_events_in_the_same_order(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))
    await world.drain()

    response = await client.get(f"/jobs/{job_id}/events", headers=SSE)

    assert response.status_code == 200
    assert response.text.startswith("retry: 1000\n\n")
    streamed = frames(response.text)
    polled = await poll_all(client, job_id)
    assert [f.data for f in streamed] == polled
    # Sources' events stored as one object (`EventBatch`) share its cursor: the last of
    # them carries it as its id, the others none.
    ided = [(n, f.id) for n, f in enumerate(streamed) if f.id]
    ids = [i for _, i in ided]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert streamed[-1].event == "report_ready"
    assert streamed[-1].id
    # Each id is the cursor the page takes: polling after it gives exactly what follows.
    for n, cursor in ided:
        assert await poll_all(client, job_id, after=cursor) == polled[n + 1 :]


async def test_a_stream_started_before_the_job_runs_gets_the_same_events_as_polling(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))

    streaming = asyncio.create_task(client.get(f"/jobs/{job_id}/events", headers=SSE))
    await asyncio.sleep(0.02)  # the stream has sent job_created and is polling
    await world.drain()
    response = await asyncio.wait_for(streaming, 5)

    assert [f.data for f in frames(response.text)] == await poll_all(client, job_id)


@pytest.mark.parametrize("how", ["last-event-id", "after", "both"])
async def test_resuming_after_any_event_gives_no_gap_and_no_duplicate(
    client: httpx.AsyncClient, world: World, how: str
) -> None:
    job_id = await create(client, sources(world))
    await world.drain()
    whole = frames((await client.get(f"/jobs/{job_id}/events", headers=SSE)).text)

    for n, frame in enumerate(whole[:-1]):
        if not frame.id:  # one of events stored as one object: resumable after the last
            continue
        headers, params = dict(SSE), {}
        if how in ("last-event-id", "both"):
            headers["Last-Event-ID"] = frame.id
        if how == "after":
            params["after"] = frame.id
        if how == "both":  # EventSource keeps its first URL and adds the header: the header wins
            params["after"] = whole[0].id
        response = await client.get(f"/jobs/{job_id}/events", headers=headers, params=params)

        assert frames(response.text) == whole[n + 1 :]


async def test_a_stream_after_the_last_event_waits_then_ends_at_its_time_limit(
    world: World,
) -> None:
    app = app_with(world, StreamPolicy(poll_s=0.005, settle_s=0, max_duration_s=0.2))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        first = frames((await client.get(f"/jobs/{job_id}/events", headers=SSE)).text)

        started = time.monotonic()
        again = await client.get(
            f"/jobs/{job_id}/events", headers={**SSE, "Last-Event-ID": first[-1].id}
        )

    assert [f.event for f in first] == ["job_created"]
    assert frames(again.text) == []
    assert 0.2 <= time.monotonic() - started < 2


# Keeping the connection honest


async def test_a_quiet_stream_sends_heartbeat_comments(world: World) -> None:
    policy = StreamPolicy(poll_s=0.005, idle_poll_s=0.01, heartbeat_s=0.05, max_duration_s=0.3)
    app = app_with(world, policy)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        response = await client.get(f"/jobs/{job_id}/events", headers=SSE)

    assert [f.event for f in frames(response.text)] == ["job_created"]
    assert 3 <= response.text.count(": heartbeat\n\n") <= 7


class CountingBlobStore(MemoryBlobStore):
    """Counts listings of events: each one is a poll."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        if prefix.endswith("/events/"):
            self.polls += 1
        return await super().list(prefix, after=after)


async def test_a_stream_stops_polling_as_soon_as_the_client_hangs_up(world: World) -> None:
    blobs = CountingBlobStore()
    world.blobs = blobs
    app = app_with(world, StreamPolicy(poll_s=0.01, idle_poll_s=0.01, max_duration_s=30))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
    live = LiveStream(app, f"/jobs/{job_id}/events")
    assert (await live.next_frame()) is not None
    await asyncio.sleep(0.05)
    assert blobs.polls >= 2

    live.hang_up()
    await asyncio.wait_for(live.task, 1)  # it would otherwise run for 30 s
    polls = blobs.polls
    await asyncio.sleep(0.05)

    assert blobs.polls == polls


async def test_a_stream_polls_less_often_once_the_job_has_been_quiet_for_a_while(
    world: World,
) -> None:
    blobs = CountingBlobStore()
    world.blobs = blobs
    policy = StreamPolicy(poll_s=0.01, idle_after_s=0.1, idle_poll_s=0.1, max_duration_s=0.6)
    app = app_with(world, policy)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        await client.get(f"/jobs/{job_id}/events", headers=SSE)

    # ~10 polls in the first 0.1 s at 10 ms, then the gap doubles to 100 ms: ~6 more, not 50.
    assert 8 <= blobs.polls <= 25


async def test_storage_trouble_mid_stream_keeps_the_stream_open(world: World) -> None:
    class FlakyBlobStore(MemoryBlobStore):
        failures = 3

        async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
            if prefix.endswith("/events/") and after and self.failures:
                self.failures -= 1
                from brief.errors import StorageUnavailable

                raise StorageUnavailable("S3 is throttling requests (SlowDown)")
            return await super().list(prefix, after=after)

    world.blobs = FlakyBlobStore()
    app = app_with(world, StreamPolicy(poll_s=0.005, idle_poll_s=0.01, settle_s=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        streaming = asyncio.create_task(client.get(f"/jobs/{job_id}/events", headers=SSE))
        await asyncio.sleep(0.05)
        await world.drain()
        response = await asyncio.wait_for(streaming, 5)

        assert [f.data for f in frames(response.text)] == await poll_all(client, job_id)


# Writers that land out of order


async def test_an_event_that_lands_after_a_newer_one_is_still_sent_in_order(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two summarize workers stamp their events, then write them; the earlier-stamped write
    lands last. The stream holds back young events until such writes have landed."""
    job_id = await create(client, sources(world, 2))
    app = app_with(world, StreamPolicy(poll_s=0.005, idle_poll_s=0.01, settle_s=0.3))
    live = LiveStream(app, f"/jobs/{job_id}/events")
    assert (await live.next_frame()) is not None  # job_created is never held back

    now = datetime.now(UTC)
    store = world.store
    await store.event(job_id, "summary_done", now + timedelta(milliseconds=20), index=1)
    await asyncio.sleep(0.1)  # a poller that did not wait would have passed index 1 by now
    await store.event(job_id, "summary_done", now + timedelta(milliseconds=10), index=0)
    await store.event(job_id, "report_ready", now + timedelta(milliseconds=30))

    got = []
    while (frame := await live.next_frame()) is not None:
        got.append((frame.event, frame.data["index"]))
    await live.task

    assert got == [("summary_done", 0), ("summary_done", 1), ("report_ready", None)]


# Where the stream cannot stream


async def test_behind_api_gateway_a_stream_makes_one_pass_and_asks_to_reconnect(
    app: FastAPI, world: World
) -> None:
    async def through_mangum(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "aws.event": {"requestContext": {}}}, receive, send)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=through_mangum), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        started = time.monotonic()
        response = await client.get(f"/jobs/{job_id}/events", headers=SSE)

    assert time.monotonic() - started < 1  # FAST would keep a real stream open for 5 s
    assert response.text.startswith("retry: 1000\n\n")
    assert [f.event for f in frames(response.text)] == ["job_created"]


@pytest.mark.parametrize(
    ("accept", "stream"),
    [
        ("text/event-stream", True),
        ("text/event-stream, application/json;q=0.5", True),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        ("text/event-stream;q=0", False),
        ("application/json, text/event-stream;q=0.9", False),
    ],
)
def test_a_stream_is_sent_only_to_clients_that_ask_for_one(accept: str, stream: bool) -> None:
    assert wants_event_stream(accept) is stream


async def test_a_client_that_does_not_ask_for_a_stream_gets_the_page(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world, 1))

    response = await client.get(f"/jobs/{job_id}/events", headers={"accept": "*/*"})

    assert response.headers["content-type"] == "application/json"
    assert [e["kind"] for e in response.json()["events"]] == ["job_created"]


# Streams that end

# Would keep a stream open for ten minutes without a word: a test that hangs has failed.
PATIENT = StreamPolicy(poll_s=0.005, idle_poll_s=0.01, settle_s=0.0, heartbeat_s=600.0)


@pytest.mark.parametrize("ending", ["report_ready", "job_cancelled"])
@pytest.mark.parametrize("how", ["last-event-id", "after"])
async def test_a_stream_resumed_after_the_terminal_event_ends_at_once_with_a_204(
    world: World, ending: str, how: str
) -> None:
    """What an EventSource does when the server closes the stream after the last event: it
    reconnects with that event's id. 204 is how SSE tells it not to come back."""
    app = app_with(world, PATIENT)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        if ending == "job_cancelled":
            assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 202
        else:
            await world.drain()
        whole = frames(
            (await asyncio.wait_for(client.get(f"/jobs/{job_id}/events", headers=SSE), 5)).text
        )
        assert whole[-1].event == ending

        headers, params = dict(SSE), {}
        if how == "last-event-id":
            headers["Last-Event-ID"] = whole[-1].id
        else:
            params["after"] = whole[-1].id
        started = time.monotonic()
        again = await asyncio.wait_for(
            client.get(f"/jobs/{job_id}/events", headers=headers, params=params), 5
        )

    assert again.status_code == 204
    assert again.content == b""
    assert time.monotonic() - started < 2


async def test_a_stream_resumed_after_events_written_past_the_end_also_ends_at_once(
    world: World,
) -> None:
    """A worker still in flight when the job was cancelled may write an event after
    job_cancelled; a cursor at that event is past the end too."""
    app = app_with(world, PATIENT)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 202
        await world.store.event(job_id, "summary_done", world.clock(), index=0)
        late = (await poll_all(client, job_id))[-1]
        assert late["kind"] == "summary_done"
        cursor = (await client.get(f"/jobs/{job_id}/events")).json()["cursor"]

        again = await asyncio.wait_for(
            client.get(f"/jobs/{job_id}/events", headers={**SSE, "Last-Event-ID": cursor}), 5
        )

    assert again.status_code == 204


async def test_a_failed_job_that_was_redriven_streams_on_after_its_failure(world: World) -> None:
    """`brief dlq redrive` lifts a failure: the job runs again, so a cursor at its job_failed
    event is not the end of it."""
    app = app_with(world, StreamPolicy(poll_s=0.005, settle_s=0.0, max_duration_s=0.2))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        now = world.clock()
        await world.store.event(job_id, "job_failed", now, detail="the model was down")
        await world.store.event(job_id, "job_redriven", now + timedelta(milliseconds=1))
        failed = (await poll_all(client, job_id))[-2]
        assert failed["kind"] == "job_failed"
        cursor = (await client.get(f"/jobs/{job_id}/events")).json()["events"]
        ids = frames((await client.get(f"/jobs/{job_id}/events", headers=SSE)).text)
        assert [f.event for f in ids] == ["job_created", "job_failed"]  # it ends there...

        again = await client.get(
            f"/jobs/{job_id}/events", headers={**SSE, "Last-Event-ID": ids[-1].id}
        )

    assert cursor[-1]["kind"] == "job_redriven"
    assert again.status_code == 200  # ...but resuming after it goes on
    assert [f.event for f in frames(again.text)] == ["job_redriven"]


BAD_CURSORS = [
    "garbage",
    "../../other/x",
    "UPPER",
    "a b",
    "x" * 5_000,
    "1717171717171717-no_such_kind.json",  # well formed, but no event is of that kind
    "0000000000000001-job_created.json",  # long before the job was created
    "9999999999999999-report_ready.json",  # centuries after now
]


@pytest.mark.parametrize("bad", BAD_CURSORS)
@pytest.mark.parametrize("form", ["stream, Last-Event-ID", "stream, after", "page, after"])
async def test_a_cursor_that_names_no_event_of_the_job_is_a_400_problem(
    world: World, bad: str, form: str
) -> None:
    app = app_with(world, PATIENT)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test"
    ) as client:
        job_id = await create(client, sources(world, 1))
        headers, params = dict(SSE) if form.startswith("stream") else {}, {}
        if form.endswith("Last-Event-ID"):
            headers["Last-Event-ID"] = bad
        else:
            params["after"] = bad

        response = await asyncio.wait_for(
            client.get(f"/jobs/{job_id}/events", headers=headers, params=params), 5
        )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["detail"].startswith("Last-Event-ID " if "Last" in form else "after ")
    assert len(problem["detail"]) < 200  # it does not echo what it was sent


async def test_an_empty_after_is_a_400_and_an_empty_last_event_id_is_no_cursor(
    client: httpx.AsyncClient, world: World
) -> None:
    """EventSource sends no Last-Event-ID before its first event; an empty one means the same."""
    job_id = await create(client, sources(world, 1))
    await world.drain()

    page = await client.get(f"/jobs/{job_id}/events", params={"after": ""})
    stream = await client.get(f"/jobs/{job_id}/events", headers={**SSE, "Last-Event-ID": ""})

    assert page.status_code == 400
    assert frames(stream.text)[0].event == "job_created"


async def test_a_cursor_of_another_job_is_refused_when_it_predates_this_one(
    client: httpx.AsyncClient, world: World
) -> None:
    older = await create(client, sources(world, 1))
    cursor = (await client.get(f"/jobs/{older}/events")).json()["cursor"]
    world.clock.advance(120)
    newer = await create(client, sources(world, 1))

    response = await client.get(f"/jobs/{newer}/events", params={"after": cursor})

    assert response.status_code == 400
    assert "before the job was created" in response.json()["detail"]


def test_the_command_line_stops_following_a_job_when_the_stream_is_a_204() -> None:
    asked: list[str | None] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        return httpx.Response(204)

    cursor = "1717171717171717-report_ready.json"
    with BriefClient("http://brief.test", transport=httpx.MockTransport(api)) as client:
        assert list(client.events("0" * 32, after=cursor)) == []

    assert asked == [cursor]  # once: no reconnecting


async def test_a_stream_of_an_unknown_job_is_a_404_problem_not_a_stream(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/jobs/{'0' * 32}/events", headers=SSE)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
