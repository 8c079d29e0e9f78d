"""HTTP for model APIs: POST JSON, read the answer whole or as server-sent events.

Every httpx failure is translated here, once, for every HTTP adapter: statuses through
`raise_for_model_status`, transport failures (timeouts, refused or dropped connections, a
stream cut short) into `ModelRetryable`, a URL the client cannot use into `ModelRejected`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from brief.llm.errors import (
    ModelRejected,
    ModelRetryable,
    is_retryable_status,
    provider_message,
    retry_after_from_headers,
)

__all__ = ["ServerSentEvent", "iter_events", "loads", "open_response", "raise_for_model_status"]

_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event of a `text/event-stream`: its `event:` name ("" when unnamed) and data."""

    event: str
    data: str


async def iter_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """The events of an SSE body (WHATWG HTML §9.2): `field: value` lines, blank-line separated.

    Comments (`:` lines), `id:` and `retry:` are ignored; multi-line data is joined with
    newlines; a last event without its blank line is still delivered.
    """
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield ServerSentEvent(event, "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield ServerSentEvent(event, "\n".join(data))


def loads(data: str | bytes, name: str) -> Any:
    """JSON from a model API; garbage (a proxy's error page, a cut frame) is retryable."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ModelRetryable(f"{name} sent an unreadable response") from exc


@contextmanager
def translate_transport_errors(name: str) -> Iterator[None]:
    """httpx's request failures as Brief's errors, for a block that sends or reads."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ModelRetryable(f"{name} did not answer in time ({type(exc).__name__})") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ModelRejected(f"{name} cannot be reached at that URL: {exc}") from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise ModelRetryable(
            f"{name}: the connection failed or dropped ({type(exc).__name__})"
        ) from exc


async def raise_for_model_status(response: httpx.Response, name: str) -> None:
    """Nothing for a 2xx; otherwise the error the status and body mean (body is read)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= _MAX_ERROR_BODY:
            break
    message = provider_message(body, default=response.reason_phrase or str(status))
    raise error_for_status(status, message, response.headers, name)


def error_for_status(
    status: int, message: str, headers: Mapping[str, str], name: str
) -> ModelRetryable | ModelRejected:
    """The error an HTTP status from a model API means."""
    if is_retryable_status(status):
        throttled = status in {429, 529}
        what = "is rate limited" if status == 429 else "is overloaded" if status == 529 else ""
        return ModelRetryable(
            f"{name} {what or 'failed'} ({status}): {message}",
            retry_after=retry_after_from_headers(headers),
            throttled=throttled,
            status=status,
        )
    return ModelRejected(f"{name} refused the request ({status}): {message}", status=status)


@asynccontextmanager
async def open_response(
    http: httpx.AsyncClient,
    url: str,
    *,
    name: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    request_timeout: httpx.Timeout | None,
) -> AsyncIterator[httpx.Response]:
    """POST `body` as JSON and yield the (unread) 2xx response; errors come out translated.

    Failures while the caller reads the body inside the block are translated too, so a
    connection cut mid-stream is a `ModelRetryable`.
    """
    content = json.dumps(body, ensure_ascii=False).encode()
    request_headers = {"content-type": "application/json", **headers}
    request = http.build_request(
        "POST",
        url,
        content=content,
        headers=request_headers,
        timeout=httpx.USE_CLIENT_DEFAULT if request_timeout is None else request_timeout,
    )
    with translate_transport_errors(name):
        response = await http.send(request, stream=True)
        try:
            await raise_for_model_status(response, name)
            yield response
        finally:
            await response.aclose()
