"""`ChatModel` for Anthropic's Messages API (`POST /v1/messages`), streamed.

The stream is named SSE events: `message_start` (the input tokens), `content_block_delta`
(`text_delta` pieces), `message_delta` (the stop reason and the cumulative output tokens),
`message_stop`, with `ping`s between and possibly an `error` event (e.g. `overloaded_error`)
after the response has begun with 200.
"""

from __future__ import annotations

from typing import Any

import httpx

from brief.llm.chat import END, MAX_TOKENS, ChatAdapter, Completion, OnToken
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.streaming import iter_events, loads, open_response

__all__ = ["ANTHROPIC_VERSION", "AnthropicChat"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_STOP_REASONS = {"end_turn": END, "max_tokens": MAX_TOKENS}
# Error types Anthropic sends that mean "try again later" (the rest are the request's fault).
_RETRYABLE_ERRORS = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
)
_THROTTLED_ERRORS = frozenset({"overloaded_error", "rate_limit_error"})


class AnthropicChat(ChatAdapter):
    """One Claude model; `base_url` is the host (the path `/v1/messages` is added)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        model: str,
        context_tokens: int,
        api_key: str | None,
        base_url: str = ANTHROPIC_BASE_URL,
        timeout_s: float | None = 60.0,
        stream: bool = True,
        temperature: float | None = None,
    ) -> None:
        self._http = http
        self._model = model
        self._context_tokens = context_tokens
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._timeout = None if timeout_s is None else httpx.Timeout(timeout_s)
        self._stream = stream
        self._temperature = temperature
        self._name = f"anthropic:{model}"

    async def complete(
        self, system: str, prompt: str, *, max_tokens: int, on_token: OnToken | None = None
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self._model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
            "stream": self._stream,
        }
        if self._temperature is not None:
            body["temperature"] = self._temperature
        async with open_response(
            self._http,
            self._url,
            name=self._name,
            headers=self._headers,
            body=body,
            request_timeout=self._timeout,
        ) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return await self._read_stream(response, on_token)
            completion = self._read_whole(loads(await response.aread(), self._name))
        if on_token is not None and completion.text:
            await on_token(completion.text)
        return completion

    async def _read_stream(self, response: httpx.Response, on_token: OnToken | None) -> Completion:
        parts: list[str] = []
        input_tokens = output_tokens = 0
        stop: str | None = None
        finished = False
        async for event in iter_events(response):
            kind = event.event
            if kind == "ping":
                continue
            data = loads(event.data, self._name)
            if not isinstance(data, dict):
                raise ModelRetryable(f"{self._name} sent an unreadable event")
            kind = kind or str(data.get("type", ""))
            if kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    parts.append(delta["text"])
                    if on_token is not None:
                        await on_token(delta["text"])
            elif kind == "message_start":
                usage = (data.get("message") or {}).get("usage") or {}
                input_tokens = _input_tokens(usage)
                output_tokens = int(usage.get("output_tokens") or 0)
            elif kind == "message_delta":
                stop = (data.get("delta") or {}).get("stop_reason") or stop
                usage = data.get("usage") or {}
                output_tokens = int(usage.get("output_tokens") or output_tokens)
                if usage.get("input_tokens") is not None:  # newer API versions repeat it here
                    input_tokens = max(input_tokens, _input_tokens(usage))
            elif kind == "message_stop":
                finished = True
            elif kind == "error":
                raise self._error(data.get("error") or {})
        if not finished:
            raise ModelRetryable(f"{self._name}: the stream ended before the answer did")
        return Completion(
            text="".join(parts),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason=_STOP_REASONS.get(stop or "", stop or END),
        )

    def _read_whole(self, data: Any) -> Completion:
        if not isinstance(data, dict) or data.get("type") == "error":
            error = data.get("error") if isinstance(data, dict) else None
            raise self._error(error or {"message": "an answer without content"})
        text = "".join(
            block.get("text", "")
            for block in data.get("content") or ()
            if isinstance(block, dict) and block.get("type") == "text"
        )
        usage = data.get("usage") or {}
        stop = data.get("stop_reason")
        return Completion(
            text=text,
            input_tokens=_input_tokens(usage),
            output_tokens=int(usage.get("output_tokens") or 0),
            stop_reason=_STOP_REASONS.get(stop or "", stop or END),
        )

    def _error(self, error: dict[str, Any]) -> ModelRetryable | ModelRejected:
        kind = str(error.get("type", ""))
        message = str(error.get("message") or kind or "unknown error")
        if kind in _RETRYABLE_ERRORS or not kind:
            return ModelRetryable(
                f"{self._name} failed mid-answer ({kind or 'error'}): {message}",
                throttled=kind in _THROTTLED_ERRORS,
            )
        return ModelRejected(f"{self._name} refused the request ({kind}): {message}")


def _input_tokens(usage: dict[str, Any]) -> int:
    """Every input token billed: uncached, written to the cache, and read from it."""
    return sum(
        int(usage.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
