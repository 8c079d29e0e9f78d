"""The `brief` command's client: `brief_client.Brief`, answering with the API's JSON as the
commands print it.

The transport is the injection point (`BriefClient(transport=httpx.MockTransport(...))`).
Failures are `brief_client`'s tree: `Unreachable` when nothing listens at the API's address
(with what to do about it), `ApiError` when the API answers with a problem, `ClientError`
(`BriefError`) for everything that stops a call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from brief_client import calls
from brief_client.calls import DEFAULT_API, JSON
from brief_client.errors import ApiError, Unreachable
from brief_client.errors import BriefError as ClientError
from brief_client.events import StreamedEvent
from brief_client.sync import Brief

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_API",
    "JSON",
    "ApiError",
    "BriefClient",
    "ClientError",
    "StreamedEvent",
    "Unreachable",
]


class BriefClient:
    """Brief's API at `api`, calling as the holder of `key` when one is given; every answer
    is the API's JSON."""

    def __init__(
        self,
        api: str = DEFAULT_API,
        key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.brief = _CommandLineBrief(api, key, transport=transport, timeout_s=timeout_s)
        self.api = self.brief.api

    def __enter__(self) -> BriefClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.brief.close()

    def submit(self, question: str, sources: Sequence[str | JSON], **options: Any) -> JSON:
        """Start a job (`options`: the request's other fields, e.g. `max_sources`); the API's
        answer (`job_id`, `status_url`, `report_url`)."""
        return self.brief.json(calls.submit(question, sources, options))

    def job(self, job_id: str) -> JSON:
        """The job's state, its sources' outcomes and its timings."""
        return self.brief.json(calls.job(job_id))

    def jobs(self, *, limit: int = 20, after: str | None = None) -> JSON:
        """A page of the caller's jobs, newest first."""
        return self.brief.json(calls.jobs(limit, after))

    def report(self, job_id: str) -> JSON:
        """The report as JSON (question, Markdown, citations, sources not used)."""
        return self.brief.json(calls.report(job_id))

    def report_markdown(self, job_id: str) -> str:
        """The report as Markdown."""
        return self.brief.report_markdown(job_id)

    def report_file(self, job_id: str, fmt: str) -> bytes:
        """The report as a file: "md", "html", "pdf" or "docx"."""
        return self.brief.report_file(job_id, fmt)

    def cancel(self, job_id: str) -> JSON:
        """Cancel the job; its view afterwards."""
        return self.brief.json(calls.cancel(job_id))

    def submit_batch(self, jobs: Sequence[JSON]) -> JSON:
        """Start many jobs at once (`batch_id`, `size`, `status_url`)."""
        return self.brief.json(calls.submit_batch(jobs))

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
        return self.brief.json(calls.batch(batch_id, after, limit, states))

    def batch_jobs(
        self, batch_id: str, states: Sequence[str] = (), *, after: int | None = None
    ) -> Iterator[JSON]:
        """Every job of the batch numbered after `after` (in `states`, if given), page after
        page."""
        while True:
            page = self.batch(batch_id, after=after, states=states)
            yield from page["jobs"]
            if page.get("cursor") is None:
                return
            after = int(page["cursor"])

    def events(
        self, job_id: str, *, after: str | None = None, max_failures: int = 8
    ) -> Iterator[StreamedEvent]:
        """The job's events, live, until its terminal event (`Brief.events`)."""
        return self.brief.events(job_id, after=after, max_failures=max_failures)


class _CommandLineBrief(Brief):
    """`Brief`, saying what to do when nothing listens at the API's address."""

    def _unreachable(self) -> Unreachable:
        return Unreachable(
            f"nothing is listening at {self.api}: start the local stack with `brief local` "
            "or pass --api URL (or set BRIEF_API)"
        )
