"""What can go wrong in a call, as one tree: every error is a `BriefError` whose message is
written for a person; an `ApiError` also carries the API's problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class BriefError(Exception):
    """A call to the API that did not succeed."""


class Unreachable(BriefError):
    """Nothing answers at the API's address."""


class ApiError(BriefError):
    """The API answered with a problem: its status, title, detail and the whole document."""

    def __init__(self, status: int, title: str, detail: str, body: JSON | None = None) -> None:
        super().__init__(f"{detail or title} (HTTP {status})")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}


class BadRequest(ApiError):
    """400: the request could not be read (e.g. a bad cursor)."""


class Unauthorized(ApiError):
    """401: no key, or a key the API does not know."""


class NotFound(ApiError):
    """404: no such job or batch for this caller."""


class Conflict(ApiError):
    """409: not now (the report is not written yet, or the job has already ended)."""


class TooLarge(ApiError):
    """413: the request is larger than the API accepts."""


class Invalid(ApiError):
    """422: a field is wrong; `errors` lists each as {"field", "message"}."""

    @property
    def errors(self) -> list[JSON]:
        found = self.body.get("errors")
        return list(found) if isinstance(found, list) else []


class RateLimited(ApiError):
    """429: too many requests; `retry_after_s` is how long the API asks to wait, if it says."""

    retry_after_s: float | None = None


class ServerError(ApiError):
    """5xx: the API could not answer now; trying again later may work."""


class JobFailed(BriefError):
    """`research()`'s job ended without a report; `reason` says why, `job_id` which job."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class JobCancelled(BriefError):
    """`research()`'s job was cancelled before it wrote a report."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Invalid,
    429: RateLimited,
}


def api_error(
    status: int, reason: str, text: str, body: object, retry_after: str | None
) -> ApiError:
    """The error for an answer with `status` >= 400 (`body`: its JSON, if it was JSON)."""
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    if not isinstance(body, dict):
        error = kind(status, reason, text[:200])
    else:
        error = kind(status, str(body.get("title") or reason), str(body.get("detail") or ""), body)
    if isinstance(error, RateLimited) and retry_after and retry_after.strip().isdigit():
        error.retry_after_s = float(retry_after)
    return error
