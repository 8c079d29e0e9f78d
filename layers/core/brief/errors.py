"""One error tree for Brief.

Every failure is either *retryable* (throttling, 5xx, timeouts: the SQS record fails and the
message comes back) or *permanent* (bad input, 4xx: recorded on the job, the record completes).
Library errors are translated into these at the adapter boundary, so services and handlers
never match on botocore or httpx exceptions.
"""

from __future__ import annotations


class BriefError(Exception):
    """Base of every error Brief raises on purpose."""


class RetryableError(BriefError):
    """A transient failure: the same work may succeed if tried again later.

    `retry_after` (seconds), when known, is how long "later" should be: the SQS record comes
    back then, rather than after the queue's whole visibility timeout.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(BriefError):
    """A failure that retrying cannot fix."""


class InvalidMessage(PermanentError):
    """A queue message that is not a valid, known message; it fails only its own record."""


class JobNotFound(PermanentError):
    """No job with that id exists (or it belongs to someone else)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class BatchNotFound(JobNotFound):
    """No batch with that id exists (or it belongs to someone else)."""


class ReportNotReady(PermanentError):
    """The job exists but has no report yet."""


class JobFinished(PermanentError):
    """The job has already ended, so it cannot be changed (cancelled) any more."""


class SourceError(PermanentError):
    """A source could not be used; `reason` is written for a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedURL(SourceError):
    """A URL that points somewhere Brief will not go (not http(s), or not a public address)."""


class UnsupportedContent(SourceError):
    """A response whose content type or bytes Brief cannot turn into text."""


class StorageUnavailable(RetryableError):
    """The blob store or queue failed in a way that may pass (throttling, 5xx, network)."""
