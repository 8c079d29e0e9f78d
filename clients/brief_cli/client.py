"""A client of Brief's HTTP API, for the `brief` command line and for scripts.

Synchronous httpx, one connection pool per client. The transport is the injection point
(`BriefClient(transport=httpx.MockTransport(...))`). Failures are translated at this
boundary into one small tree: `Unreachable` when nothing listens at the API's address,
`ApiError` when the API answers with a problem (its status, title and detail), and
`ClientError` for everything else that stops a call.

`events()` follows a job live as server-sent events and resumes after the last event it
saw (`Last-Event-ID`) when a connection drops, so a caller sees every event once, in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# httpx is imported when a client is made: the `brief` command's parser, `--help` and the
# local stack's commands do not pay for it (~0.1-0.3 s with httpx's optional CLI extras).
if TYPE_CHECKING:
    import httpx

DEFAULT_API = "http://127.0.0.1:8000"
EVENT_STREAM = "text/event-stream"
TERMINAL = frozenset({"report_ready", "job_failed", "job_cancelled"})

JSON = dict[str, Any]


class ClientError(Exception):
    """A call to the API that did not succeed; the message is written for a person."""


class Unreachable(ClientError):
    """Nothing answers at the API's address."""


class ApiError(ClientError):
    """The API answered with an error (an RFC 9457 problem)."""

    def __init__(self, status: int, title: str, detail: str, body: JSON | None = None) -> None:
        super().__init__(f"{detail or title} (HTTP {status})")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}


@dataclass(frozen=True)
class StreamedEvent:
    """One progress event as the stream delivered it: its cursor and the event itself."""

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


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Messages from the lines of a `text/event-stream` (comments and heartbeats skipped).

    A message without data still yields when it carries `retry`, so the reader learns it.
    """
    message = SseMessage()
    for line in lines:
        if line == "":
            if message.data or message.retry_ms is not None:
                yield message
            message = SseMessage()
            continue
        if line.startswith(":"):
            continue
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


class BriefClient:
    """Brief's API at `api`, calling as the holder of `key` when one is given."""

    def __init__(
        self,
        api: str = DEFAULT_API,
        key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        import httpx

        self.api = api.rstrip("/")
        headers = {"User-Agent": "brief-cli/0.1"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.api,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            transport=transport,
            trust_env=False,  # the API is named explicitly; no proxy from the environment
        )

    def __enter__(self) -> BriefClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- calls --------------------------------------------------------------------------

    def submit(self, question: str, sources: Sequence[str | JSON]) -> JSON:
        """Start a job; the API's answer (`job_id`, `status_url`, `report_url`)."""
        return self._json("POST", "/jobs", json={"question": question, "sources": sources})

    def job(self, job_id: str) -> JSON:
        """The job's state, its sources' outcomes and its timings."""
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self, *, limit: int = 20, after: str | None = None) -> JSON:
        """A page of the caller's jobs, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if after:
            params["after"] = after
        return self._json("GET", "/jobs", params=params)

    def report(self, job_id: str) -> JSON:
        """The report as JSON (question, Markdown, citations, sources not used)."""
        return self._json("GET", f"/jobs/{job_id}/report")

    def report_markdown(self, job_id: str) -> str:
        """The report as Markdown."""
        response = self._send("GET", f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"})
        return response.text

    def cancel(self, job_id: str) -> JSON:
        """Cancel the job; its view afterwards."""
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def submit_batch(self, jobs: Sequence[JSON]) -> JSON:
        """Start many jobs at once (`batch_id`, `size`, `status_url`)."""
        return self._json("POST", "/batches", json={"jobs": list(jobs)})

    def batch(
        self,
        batch_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        states: Sequence[str] = (),
    ) -> JSON:
        """How many of the batch's jobs are in each state, and a page of its jobs (those
        numbered after `after`, in `states` if given; `cursor` asks for the next page)."""
        params: list[tuple[str, str | int]] = [("state", s) for s in states]
        if after is not None:
            params.append(("after", after))
        if limit is not None:
            params.append(("limit", limit))
        return self._json("GET", f"/batches/{batch_id}", params=params)

    def batch_jobs(self, batch_id: str, states: Sequence[str] = ()) -> Iterator[JSON]:
        """Every job of the batch (in `states`, if given), page after page."""
        after: int | None = None
        while True:
            page = self.batch(batch_id, after=after, states=states)
            yield from page["jobs"]
            if page.get("cursor") is None:
                return
            after = int(page["cursor"])

    def events(
        self, job_id: str, *, after: str | None = None, max_failures: int = 8
    ) -> Iterator[StreamedEvent]:
        """The job's events, live, until its terminal event (or none, when `after` is already
        at or past it: the server answers 204).

        Streams server-sent events and reconnects after the last event seen when the
        connection drops or the server ends a stream early; falls back to the cursor page
        when the server answers JSON. Gives up after `max_failures` failed connections in a
        row (each waits longer, up to 15 s).
        """
        import httpx

        cursor = after
        retry_s = 1.0
        failures = 0
        while True:
            headers = {"Accept": EVENT_STREAM}
            if cursor:
                headers["Last-Event-ID"] = cursor
            try:
                with self._http.stream(
                    "GET",
                    f"/jobs/{job_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, connect=5.0, read=45.0),  # heartbeats: 15 s
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _problem(response)
                    if response.status_code == 204:  # resumed after the end: nothing will come
                        return
                    failures = 0
                    if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                        response.read()
                        page: JSON = response.json()
                        for event in page["events"]:
                            yield StreamedEvent(None, event["kind"], event)
                            if event["kind"] in TERMINAL:
                                return
                        cursor = page.get("cursor") or cursor
                    else:
                        for message in parse_sse(response.iter_lines()):
                            if message.retry_ms is not None:
                                retry_s = message.retry_ms / 1000
                            if not message.data:
                                continue
                            cursor = message.id or cursor
                            event = json.loads("\n".join(message.data))
                            yield StreamedEvent(cursor, event["kind"], event)
                            if event["kind"] in TERMINAL:
                                return
            except httpx.ConnectError as exc:
                if failures == 0 and cursor is None:
                    raise self._unreachable() from exc
                failures += 1
            except ApiError as exc:
                if exc.status < 500 and exc.status != 429:
                    raise  # no such job, not yours, no key: trying again cannot help
                failures += 1
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                failures += 1
                if failures >= max_failures:
                    raise ClientError(f"lost the event stream of job {job_id}: {exc}") from exc
            if failures >= max_failures:
                raise ClientError(f"could not reconnect to the event stream of job {job_id}")
            time.sleep(min(retry_s * 2 ** min(failures, 4), 15.0) if failures else retry_s)

    # -- plumbing -----------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = self._send(method, path, **kwargs)
        try:
            body: JSON = response.json()
        except ValueError as exc:
            raise ClientError(f"{method} {path} answered something that is not JSON") from exc
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise self._unreachable() from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"the API at {self.api} did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} {path} failed: {exc}") from exc
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def _unreachable(self) -> Unreachable:
        return Unreachable(
            f"nothing is listening at {self.api}: start the local stack with `brief local` "
            "or pass --api URL (or set BRIEF_API)"
        )


def _problem(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ApiError(response.status_code, response.reason_phrase, response.text[:200])
    return ApiError(
        response.status_code,
        str(body.get("title") or response.reason_phrase),
        str(body.get("detail") or ""),
        body,
    )
