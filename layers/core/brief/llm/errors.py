"""Model failures, translated into Brief's one error tree at the adapter boundary.

A provider's throttling (429), overload (529), server errors (5xx), timeouts and dropped
connections are `ModelRetryable`: the same call may succeed later, and if the retries in this
container run out the SQS record fails and the message comes back. Anything else the
provider refuses (a 4xx: bad request, context too long, no access) is `ModelRejected`: it
is recorded on the job with the provider's own words, and retrying would not help.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping

from brief.errors import PermanentError, RetryableError

__all__ = [
    "RETRYABLE_STATUS",
    "ModelRejected",
    "ModelRetryable",
    "provider_message",
    "retry_after_from_headers",
]

# 408 request timeout, 409 conflict (Anthropic's SDK retries it), 425 too early, 429 rate
# limited, every 5xx, and 529 (Anthropic: overloaded).
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_MAX_MESSAGE_CHARS = 300


class ModelRetryable(RetryableError):
    """A model call that may succeed if made again later.

    `retry_after` is the wait the provider asked for (seconds), when it said one;
    `throttled` is True when the provider said the caller is over a rate limit (or
    overloaded), which pauses every caller sharing the rate limiter, not only this one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.throttled = throttled
        self.status = status


class ModelRejected(PermanentError):
    """The provider refused the request; the message says why, in the provider's words."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status from a model API means "try again later"."""
    return status in RETRYABLE_STATUS or status >= 500


def retry_after_from_headers(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """The wait a response asks for, in seconds: `retry-after-ms`, else `Retry-After`.

    `Retry-After` may be a number of seconds or an HTTP date (RFC 9110 §10.2.3); a date in
    the past means "now" (0). Anything unparseable is ignored (None).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if math.isnan(number) or math.isinf(number) or number < 0:
        return None
    return number


def provider_message(body: bytes | str, *, default: str) -> str:
    """The human part of an error body, whatever the provider's shape.

    OpenAI and LiteLLM: `{"error": {"message", "type", "code"}}`; Ollama: `{"error": "..."}`;
    vLLM: `{"message": ...}`; Anthropic: `{"type": "error", "error": {"type", "message"}}`;
    AWS: `{"message": ...}` or `{"Message": ...}`. Falls back to the start of the body.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message: object = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("type")
            code = error.get("code")
            if isinstance(message, str) and isinstance(code, str) and code not in message:
                message = f"{message} ({code})"
        elif isinstance(error, str):
            message = error
        if not message:
            message = data.get("message") or data.get("Message") or data.get("detail")
    if not isinstance(message, str) or not message.strip():
        message = " ".join(text.split()) or default
    message = " ".join(message.split())
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    return message
