"""`AsyncBrief`: the API from asyncio code (the same calls as `Brief`, awaited)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from brief_client import calls
from brief_client.calls import DEFAULT_API, JSON, Call
from brief_client.errors import Unreachable
from brief_client.events import EVENT_STREAM, Follow, SseParser, StreamedEvent, stream_timeout

# httpx and Brief's models are imported when a client is made or a model is read, so the
# `brief` command's parser and `--help` do not pay for them.
if TYPE_CHECKING:
    import httpx

    from brief.models import BatchView, JobView, Report


class AsyncBrief:
    """Brief's API at `api`, calling as the holder of `key` when one is given.

    `transport` is httpx's injection point (`httpx.MockTransport`, `httpx.ASGITransport`).
    """

    def __init__(
        self,
        api: str = DEFAULT_API,
        key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        import httpx

        self.api = api.rstrip("/")
        self._http = httpx.AsyncClient(
            **calls.client_options(self.api, key, timeout_s), transport=transport
        )

    async def __aenter__(self) -> AsyncBrief:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- jobs ---------------------------------------------------------------------------

    async def research(
        self,
        question: str,
        sources: Sequence[str | JSON],
        *,
        on_event: Callable[[StreamedEvent], object] | None = None,
        **options: Any,
    ) -> Report:
        """Run a job to its end and return its report; `on_event` sees each progress event.
        Raises JobFailed (with the job's reason) or JobCancelled when it ends without one.
        `on_event` may be a coroutine function: each call is awaited."""
        job_id = await self.submit(question, sources, **options)
        last = ""
        async for event in self.events(job_id):
            last = event.kind
            if on_event is not None and inspect.isawaitable(seen := on_event(event)):
                await seen
        calls.outcome(job_id, last, await self._json(calls.job(job_id)))
        return await self.report(job_id)

    async def submit(self, question: str, sources: Sequence[str | JSON], **options: Any) -> str:
        """Start a job (the API validates it first); its id."""
        return str((await self._json(calls.submit(question, sources, options)))["job_id"])

    async def status(self, job_id: str) -> JobView:
        """The job's state, its sources' outcomes, timings and cost."""
        from brief.models import JobView

        return JobView.model_validate(await self._json(calls.job(job_id)))

    async def report(self, job_id: str) -> Report:
        """The report (409 Conflict until it is written)."""
        from brief.models import Report

        return Report.model_validate(await self._json(calls.report(job_id)))

    async def report_markdown(self, job_id: str) -> str:
        """The report as Markdown."""
        return (await self._send(calls.report_markdown(job_id))).text

    async def report_file(self, job_id: str, fmt: str) -> bytes:
        """The report as a file to share: "md", "html" (self-contained), "pdf" or "docx"."""
        return (await self._send(calls.report_file(job_id, fmt))).content

    async def cancel(self, job_id: str) -> JobView:
        """Stop the job's work in flight; its view afterwards (409 if it already ended)."""
        from brief.models import JobView

        return JobView.model_validate(await self._json(calls.cancel(job_id)))

    async def batch(self, requests: Sequence[JSON]) -> str:
        """Start up to 10,000 jobs at once, each `{"question", "sources", ...}`; the batch's id."""
        return str((await self._json(calls.submit_batch(requests)))["batch_id"])

    async def batch_status(
        self, batch_id: str, *, after: int | None = None, limit: int | None = None
    ) -> BatchView:
        """How many of the batch's jobs are in each state, and a page of them."""
        from brief.models import BatchView

        return BatchView.model_validate(await self._json(calls.batch(batch_id, after, limit, ())))

    async def events(
        self, job_id: str, *, after: str | None = None, max_failures: int = 8
    ) -> AsyncIterator[StreamedEvent]:
        """The job's events, live, until its terminal one (none when `after` is already at
        or past it). Reconnects after the last event seen when a connection drops."""
        follow = Follow(job_id, after, max_failures, self._unreachable)
        while not follow.done:
            try:
                async with self._http.stream(
                    "GET", follow.path, headers=follow.headers(), timeout=stream_timeout()
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise calls.problem(response)
                    if response.status_code == 204:  # resumed after the end
                        return
                    follow.connected()
                    if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                        await response.aread()  # a server that does not stream: a page
                        for paged in follow.page(response.json()):
                            yield paged
                    else:
                        parser = SseParser()
                        async for line in response.aiter_lines():
                            message = parser.feed(line)
                            event = follow.message(message) if message else None
                            if event is not None:
                                yield event
                                if follow.done:
                                    return
                wait_s = follow.pause_s()
            except Exception as exc:  # Follow decides which are worth another try
                wait_s = follow.failed(exc)
            await asyncio.sleep(wait_s)

    # -- plumbing -----------------------------------------------------------------------

    async def _json(self, call: Call) -> JSON:
        return calls.json_of(call, await self._send(call))

    async def _send(self, call: Call) -> httpx.Response:
        import httpx

        try:
            response = await self._http.request(call.method, call.path, **call.options())
        except httpx.HTTPError as exc:
            raise calls.failure(call, self.api, exc, self._unreachable) from exc
        return calls.checked(response)

    def _unreachable(self) -> Unreachable:
        return Unreachable(f"nothing is listening at {self.api}")
