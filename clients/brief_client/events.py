"""Following a job live: server-sent events, parsed line by line, and the state of a follow
that resumes after the last event it saw (`Last-Event-ID`) when a connection drops. Both
clients drive the same `Follow`; only their I/O differs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from brief_client.errors import ApiError, BriefError, Unreachable

EVENT_STREAM = "text/event-stream"
TERMINAL = frozenset({"report_ready", "job_failed", "job_cancelled"})
JSON = dict[str, Any]


@dataclass(frozen=True)
class StreamedEvent:
    """One progress event as the stream delivered it: its cursor, its kind and the event
    (`job_id`, `kind`, `at`, and `index`, `detail`, `retry` when it has them; a `report_text`
    draft has the `text` it adds at `offset`)."""

    cursor: str | None
    kind: str
    data: JSON


@dataclass
class SseMessage:
    """One server-sent event, as its fields arrived."""

    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)
    retry_ms: int | None = None


class SseParser:
    """`text/event-stream` lines in, whole messages out (comments and heartbeats skipped; a
    message without data still comes out when it carries `retry`, so the reader learns it)."""

    def __init__(self) -> None:
        self._message = SseMessage()

    def feed(self, line: str) -> SseMessage | None:
        """The message `line` completes, if it completes one."""
        message = self._message
        if line == "":
            self._message = SseMessage()
            return message if message.data or message.retry_ms is not None else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            message.data.append(value)
        elif name == "id" and "\x00" not in value:
            message.id = value
        elif name == "event":
            message.event = value
        elif name == "retry" and value.isdigit():
            message.retry_ms = int(value)
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Messages from the lines of a `text/event-stream`."""
    parser = SseParser()
    for line in lines:
        if (message := parser.feed(line)) is not None:
            yield message


class Follow:
    """Where a live follow of one job stands: the cursor to resume after, how long the server
    asks to wait before reconnecting, and how many connections failed in a row."""

    def __init__(
        self,
        job_id: str,
        after: str | None,
        max_failures: int,
        unreachable: Callable[[], Unreachable],
    ) -> None:
        self.job_id = job_id
        self.cursor = after
        self.retry_s = 1.0
        self.failures = 0
        self.max_failures = max_failures
        self.done = False
        self._unreachable = unreachable

    @property
    def path(self) -> str:
        return f"/jobs/{self.job_id}/events"

    def headers(self) -> dict[str, str]:
        """Ask for a stream, resuming after the last event seen."""
        headers = {"Accept": EVENT_STREAM}
        if self.cursor:
            headers["Last-Event-ID"] = self.cursor
        return headers

    def connected(self) -> None:
        self.failures = 0

    def page(self, body: JSON) -> Iterator[StreamedEvent]:
        """The events of a JSON page (a server that does not stream answers with one)."""
        for event in body["events"]:
            yield StreamedEvent(None, event["kind"], event)
            if event["kind"] in TERMINAL:
                self.done = True
                return
        self.cursor = body.get("cursor") or self.cursor

    def message(self, message: SseMessage) -> StreamedEvent | None:
        """The event a stream message carries (None: a `retry` or heartbeat only)."""
        if message.retry_ms is not None:
            self.retry_s = message.retry_ms / 1000
        if not message.data:
            return None
        self.cursor = message.id or self.cursor
        event = json.loads("\n".join(message.data))
        if event["kind"] in TERMINAL:
            self.done = True
        return StreamedEvent(self.cursor, event["kind"], event)

    def failed(self, exc: Exception) -> float:
        """Seconds to wait before reconnecting after `exc`; raises when trying again cannot
        help (no such job, no key) or after `max_failures` failed connections in a row."""
        import httpx

        if isinstance(exc, httpx.ConnectError):
            if self.failures == 0 and self.cursor is None:
                raise self._unreachable() from exc
        elif isinstance(exc, ApiError):
            if exc.status < 500 and exc.status != 429:
                raise exc
        elif not isinstance(
            exc, httpx.TimeoutException | httpx.RemoteProtocolError | httpx.ReadError
        ):
            raise exc
        self.failures += 1
        if self.failures >= self.max_failures:
            raise BriefError(
                f"lost the event stream of job {self.job_id} after {self.failures} tries: {exc}"
            ) from exc
        backoff: float = self.retry_s * 2 ** min(self.failures, 4)
        return min(backoff, 15.0)

    def pause_s(self) -> float:
        """Seconds to wait after a stream that ended early (the server's `retry`)."""
        return self.retry_s


def stream_timeout() -> Any:
    """Reads may wait for the next event: the server sends a heartbeat every 15 s."""
    import httpx

    return httpx.Timeout(30.0, connect=5.0, read=45.0)
