"""Calling a JSON web API as a source: one retry for passing trouble, failures in plain words.

Search providers and vector indexes fail the same ways (a refused key, throttling, a 5xx, a
timeout, an answer that is not JSON), and a failed source must carry a reason a user can act
on, so every adapter over such an API calls through `JsonApi`. A source failure never fails
the job: each one becomes a `SourceError`, after one retry when the trouble may pass.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import httpx

from brief.errors import SourceError

log = logging.getLogger(__name__)

# Statuses worth one more try: throttling and server trouble.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_DETAIL_CHARS = 200


class JsonApi:
    """One JSON-over-HTTP service, reached through a shared `httpx.AsyncClient`.

    `role` names the service in reasons ("the search provider"); `reasons` overrides the
    reason for a status (a SearXNG 403 means JSON output is disabled, not a bad key).
    A failed attempt that may pass is tried once more after `retry_delay_s`; a
    `Retry-After` header is honoured up to four times that delay.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        role: str,
        reasons: Mapping[int, str] | None = None,
        retry_delay_s: float = 0.5,
        max_bytes: int = 4_000_000,
    ) -> None:
        self._client = client
        self.role = role
        self._reasons = dict(reasons or {})
        self._retry_delay_s = retry_delay_s
        self._max_bytes = max_bytes

    async def call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        reasons: Mapping[int, str] | None = None,
    ) -> Any:
        """The decoded JSON answer; SourceError with a user-facing reason when there is none.

        `reasons` adds reasons for statuses that mean something particular for this call.
        """
        try:
            request = self._client.build_request(
                method,
                url,
                params=params,
                json=body,
                headers={"Accept": "application/json", **(headers or {})},
            )
        except httpx.InvalidURL as exc:
            raise self._fail(f"{self.role} is configured with an invalid URL", exc) from exc
        for attempt in (1, 2):
            try:
                status, content, retry_after = await self._send(request, auth)
            except httpx.TimeoutException as exc:
                if attempt == 1:
                    await asyncio.sleep(self._delay(None))
                    continue
                raise self._fail(f"{self.role} did not answer in time", exc) from exc
            except httpx.TransportError as exc:  # connection refused or reset, DNS, protocol
                if attempt == 1 and isinstance(exc, httpx.NetworkError | httpx.ProtocolError):
                    await asyncio.sleep(self._delay(None))
                    continue
                raise self._fail(f"could not connect to {self.role}", exc) from exc
            except httpx.HTTPError as exc:  # e.g. a body that does not decode
                raise self._fail(f"{self.role} sent a broken answer", exc) from exc
            if status in _RETRY_STATUSES and attempt == 1:
                await asyncio.sleep(self._delay(retry_after))
                continue
            if status >= 400:
                raise self._fail(self._status_reason(status, content, reasons or {}), None)
            try:
                return json.loads(content)
            except ValueError as exc:  # includes UnicodeDecodeError
                raise self._fail(unreadable(self.role).reason, exc) from exc
        raise AssertionError("unreachable: the second attempt always returns or raises")

    async def _send(
        self, request: httpx.Request, auth: httpx.Auth | None
    ) -> tuple[int, bytes, str | None]:
        """Status, body (read up to the size limit) and Retry-After of one attempt."""
        response = await self._client.send(request, auth=auth, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise SourceError(f"{self.role} sent more than {self._max_bytes:,} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, b"".join(chunks), response.headers.get("retry-after")

    def _delay(self, retry_after: str | None) -> float:
        """The wait before the retry: Retry-After when sane, else the delay with jitter, so
        that the sources of many jobs throttled together do not come back together."""
        if retry_after is not None:
            try:
                return max(0.0, min(float(retry_after), 4 * self._retry_delay_s))
            except ValueError:  # an HTTP date: not worth parsing for one short retry
                pass
        return self._retry_delay_s * random.uniform(0.5, 1.0)

    def _status_reason(self, status: int, content: bytes, reasons: Mapping[int, str]) -> str:
        if status in reasons:
            return reasons[status]
        if status in self._reasons:
            return self._reasons[status]
        if status in {401, 403}:
            return f"{self.role} refused the API key"
        phrase = _phrase(status)
        if status == 429:
            return f"{self.role} is limiting how often Brief may ask ({phrase})"
        if status >= 500:
            return f"{self.role} failed ({phrase})"
        detail = _error_detail(content)
        return f"{self.role} rejected the request ({phrase}{': ' + detail if detail else ''})"

    def _fail(self, reason: str, exc: Exception | None) -> SourceError:
        log.warning(
            "source api failed",
            extra={
                "role": self.role,
                "reason": reason,
                "error": type(exc).__name__ if exc else None,
            },
        )
        return SourceError(reason)


def unreadable(role: str) -> SourceError:
    """The error for an answer that is JSON but not in the shape the API documents."""
    return SourceError(f"{role} sent an answer Brief cannot read")


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _error_detail(content: bytes) -> str | None:
    """The message in an error body, for the shapes these APIs use; None if there is none."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    candidates: list[Any] = []
    if isinstance(body, dict):
        status, error, detail = body.get("status"), body.get("error"), body.get("detail")
        if isinstance(status, dict):  # Qdrant: {"status": {"error": "..."}}
            candidates.append(status.get("error"))
        if isinstance(error, dict):  # OpenSearch: {"error": {"reason": "..."}}; Brave: detail
            candidates += [error.get("reason"), error.get("detail"), error.get("message")]
        if isinstance(detail, dict):  # Tavily: {"detail": {"error": "..."}}
            candidates.append(detail.get("error"))
        candidates += [error, detail, body.get("message")]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            text = " ".join(candidate.split())
            return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"
    return None
