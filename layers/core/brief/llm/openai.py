"""`ChatModel` for any OpenAI-compatible `/chat/completions`: OpenAI, vLLM, Ollama, LiteLLM.

Streams with `stream: true` and `stream_options: {"include_usage": true}`: the answer comes
as `data:` lines of `chat.completion.chunk` JSON, then a chunk with empty `choices` and the
request's `usage`, then `data: [DONE]`. A server that ignores the option (or a stream that
ends without its usage chunk) gets its usage estimated, and the completion says so.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from brief.llm.chat import END, MAX_TOKENS, ChatAdapter, Completion, OnToken
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.streaming import iter_events, loads, open_response
from brief.llm.tokens import estimate_tokens

__all__ = ["OpenAIChat"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
_STOP_REASONS = {"stop": END, "length": MAX_TOKENS}
# Per-message framing tokens the chat format adds (role markers), for estimated usage.
_MESSAGE_OVERHEAD = 4


class OpenAIChat(ChatAdapter):
    """One model behind an OpenAI-compatible API; `base_url` ends before `/chat/completions`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        model: str,
        context_tokens: int,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        timeout_s: float | None = 60.0,
        stream: bool = True,
        temperature: float | None = None,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    ) -> None:
        self._http = http
        self._model = model
        self._context_tokens = context_tokens
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = None if timeout_s is None else httpx.Timeout(timeout_s)
        self._stream = stream
        self._temperature = temperature
        self._max_tokens_field = max_tokens_field
        self._name = f"openai:{model}"

    async def complete(
        self, system: str, prompt: str, *, max_tokens: int, on_token: OnToken | None = None
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            self._max_tokens_field: max_tokens,
            "stream": self._stream,
        }
        if self._stream:
            body["stream_options"] = {"include_usage": True}
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
            if _is_event_stream(response):
                text, finish, usage = await self._read_stream(response, on_token)
            else:  # not asked to stream, or a server that answers whole anyway
                text, finish, usage = self._read_whole(loads(await response.aread(), self._name))
                if on_token is not None and text:
                    await on_token(text)
        return self._completion(system, prompt, text, finish, usage)

    async def _read_stream(
        self, response: httpx.Response, on_token: OnToken | None
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        done = False
        async for event in iter_events(response):
            if event.data == "[DONE]":
                done = True
                break
            chunk = loads(event.data, self._name)
            if not isinstance(chunk, dict):
                raise ModelRetryable(f"{self._name} sent an unreadable stream chunk")
            if chunk.get("error"):
                raise self._stream_error(chunk["error"])
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    parts.append(piece)
                    if on_token is not None:
                        await on_token(piece)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            if chunk.get("usage"):
                usage = chunk["usage"]
        if not done and finish is None:
            raise ModelRetryable(f"{self._name}: the stream ended before the answer did")
        return "".join(parts), finish, usage

    def _read_whole(self, data: Any) -> tuple[str, str | None, dict[str, Any] | None]:
        if not isinstance(data, dict) or not data.get("choices"):
            if isinstance(data, dict) and data.get("error"):
                raise self._stream_error(data["error"])
            raise ModelRetryable(f"{self._name} sent an answer without choices")
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        return text, choice.get("finish_reason"), data.get("usage")

    def _stream_error(self, error: Any) -> ModelRetryable | ModelRejected:
        """An error sent inside a 200 answer: invalid requests are final, the rest transient."""
        message = error.get("message") if isinstance(error, dict) else str(error)
        kind = error.get("type") if isinstance(error, dict) else None
        if kind == "invalid_request_error":
            return ModelRejected(f"{self._name} refused the request: {message}")
        return ModelRetryable(f"{self._name} failed mid-answer: {message}")

    def _completion(
        self,
        system: str,
        prompt: str,
        text: str,
        finish: str | None,
        usage: dict[str, Any] | None,
    ) -> Completion:
        stop = _STOP_REASONS.get(finish or "", finish or END)
        if usage and isinstance(usage.get("prompt_tokens"), int):
            return Completion(
                text=text,
                input_tokens=usage["prompt_tokens"],
                output_tokens=int(usage.get("completion_tokens") or 0),
                stop_reason=stop,
            )
        return Completion(
            text=text,
            input_tokens=estimate_tokens(system) + estimate_tokens(prompt) + 2 * _MESSAGE_OVERHEAD,
            output_tokens=estimate_tokens(text),
            stop_reason=stop,
            usage_estimated=True,
        )


def _is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")
