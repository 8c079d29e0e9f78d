"""The API's calls as data: what to send and how to read the answer, shared by the sync and
the async client (each only sends)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brief_client.errors import ApiError, BriefError, JobCancelled, JobFailed, api_error

if TYPE_CHECKING:
    import httpx

JSON = dict[str, Any]
DEFAULT_API = "http://127.0.0.1:8000"
USER_AGENT = "brief-client/0.1"


@dataclass(frozen=True)
class Call:
    """One request: method, path, and what goes with it."""

    method: str
    path: str
    json: Any = None
    params: list[tuple[str, str | int]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of httpx's `request`."""
        found: dict[str, Any] = {}
        if self.json is not None:
            found["json"] = self.json
        if self.params:
            found["params"] = self.params
        if self.headers:
            found["headers"] = self.headers
        return found


def submit(question: str, sources: Sequence[str | JSON], options: JSON) -> Call:
    return Call("POST", "/jobs", json={"question": question, "sources": list(sources), **options})


def job(job_id: str) -> Call:
    return Call("GET", f"/jobs/{job_id}")


def jobs(limit: int, after: str | None) -> Call:
    params: list[tuple[str, str | int]] = [("limit", limit)]
    if after:
        params.append(("after", after))
    return Call("GET", "/jobs", params=params)


def report(job_id: str) -> Call:
    return Call("GET", f"/jobs/{job_id}/report")


def report_markdown(job_id: str) -> Call:
    return Call("GET", f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"})


def report_file(job_id: str, fmt: str) -> Call:
    """The report as a file: "md", "html", "pdf" or "docx"."""
    return Call("GET", f"/jobs/{job_id}/report", params=[("format", fmt)])


def cancel(job_id: str) -> Call:
    return Call("POST", f"/jobs/{job_id}/cancel")


def submit_batch(requests: Sequence[JSON]) -> Call:
    return Call("POST", "/batches", json={"jobs": list(requests)})


def batch(batch_id: str, after: int | None, limit: int | None, states: Sequence[str]) -> Call:
    params: list[tuple[str, str | int]] = [("state", s) for s in states]
    if after is not None:
        params.append(("after", after))
    if limit is not None:
        params.append(("limit", limit))
    return Call("GET", f"/batches/{batch_id}", params=params)


def headers(key: str | None) -> dict[str, str]:
    """Every request's headers: who calls, and the key when there is one."""
    found = {"User-Agent": USER_AGENT}
    if key:
        found["Authorization"] = f"Bearer {key}"
    return found


def outcome(job_id: str, last: str, view: JSON) -> None:
    """Raise for a followed job that ended without a report (`research`)."""
    if last == "job_cancelled" or view.get("state") == "cancelled":
        raise JobCancelled(job_id)
    if last != "report_ready":
        raise JobFailed(job_id, str(view.get("reason") or "no reason given"))


def client_options(api: str, key: str | None, timeout_s: float) -> dict[str, Any]:
    """The keyword arguments of httpx's `Client` or `AsyncClient` for the API at `api`."""
    import httpx

    return {
        "base_url": api,
        "headers": headers(key),
        "timeout": httpx.Timeout(timeout_s, connect=5.0),
        "trust_env": False,  # the API is named explicitly; no proxy from the environment
    }


def checked(response: httpx.Response) -> httpx.Response:
    """`response`, unless it is an error: then its `ApiError`, with the problem+json detail."""
    if response.status_code >= 400:
        raise problem(response)
    return response


def json_of(call: Call, response: httpx.Response) -> JSON:
    """The answer's JSON; a `BriefError` saying which call answered something else."""
    try:
        body: JSON = response.json()
    except ValueError as exc:
        raise BriefError(f"{call.method} {call.path} answered something that is not JSON") from exc
    return body


def failure(
    call: Call, api: str, exc: Exception, unreachable: Callable[[], BriefError]
) -> BriefError:
    """What an httpx error sending `call` means to a person (`unreachable`: nothing listens)."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return unreachable()
    if isinstance(exc, httpx.TimeoutException):
        return BriefError(f"the API at {api} did not answer in time ({exc})")
    return BriefError(f"{call.method} {call.path} failed: {exc}")


def problem(response: httpx.Response) -> ApiError:
    """The typed error for an answer with status >= 400."""
    try:
        body: object = response.json()
    except ValueError:
        body = None
    return api_error(
        response.status_code,
        response.reason_phrase,
        response.text,
        body,
        response.headers.get("retry-after"),
    )
