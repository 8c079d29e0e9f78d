"""`ChatModel` for Amazon Bedrock's Converse API, streamed with ConverseStream.

The client is an aioboto3 `bedrock-runtime` client the caller owns (created once per
container, with botocore's own retries off: retries are `brief.llm.retry`'s, so that they
share the rate limiter). ConverseStream answers with an event stream: `messageStart`,
`contentBlockDelta` (`delta.text`), `contentBlockStop`, `messageStop` (`stopReason`), then
`metadata` (`usage.inputTokens`, `usage.outputTokens`); a failure after the stream began
arrives as an exception event that botocore raises as `EventStreamError`.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from brief.llm.chat import END, MAX_TOKENS, ChatAdapter, Completion, OnToken
from brief.llm.errors import ModelRejected, ModelRetryable, retry_after_from_headers

__all__ = ["BedrockChat"]

_STOP_REASONS = {"end_turn": END, "stop_sequence": END, "max_tokens": MAX_TOKENS}
# Error codes that mean "try again later"; the stream's exception events use the same
# names in camelCase ("throttlingException"), which botocore reports as the code.
_RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelStreamErrorException",
        "TooManyRequestsException",
    }
)
_THROTTLED = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "ServiceUnavailableException"}
)


class BedrockChat(ChatAdapter):
    """One Bedrock model (a model id or an inference profile id or ARN)."""

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        context_tokens: int,
        stream: bool = True,
        temperature: float | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._context_tokens = context_tokens
        self._stream = stream
        self._temperature = temperature
        self._name = f"bedrock:{model}"

    async def complete(
        self, system: str, prompt: str, *, max_tokens: int, on_token: OnToken | None = None
    ) -> Completion:
        inference: dict[str, Any] = {"maxTokens": max_tokens}
        if self._temperature is not None:
            inference["temperature"] = self._temperature
        request = {
            "modelId": self._model,
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": inference,
        }
        try:
            if self._stream:
                return await self._converse_stream(request, on_token)
            response = await self._client.converse(**request)
        except (TimeoutError, ClientError, BotoCoreError, aiohttp.ClientError) as exc:
            raise self._translate(exc) from exc
        text = "".join(
            block.get("text", "")
            for block in response.get("output", {}).get("message", {}).get("content", [])
        )
        usage = response.get("usage") or {}
        if on_token is not None and text:
            await on_token(text)
        return Completion(
            text=text,
            input_tokens=int(usage.get("inputTokens") or 0),
            output_tokens=int(usage.get("outputTokens") or 0),
            stop_reason=_STOP_REASONS.get(response.get("stopReason", ""), END),
        )

    async def _converse_stream(
        self, request: dict[str, Any], on_token: OnToken | None
    ) -> Completion:
        response = await self._client.converse_stream(**request)
        stream = response["stream"]
        parts: list[str] = []
        stop: str | None = None
        usage: dict[str, Any] | None = None
        try:
            async for event in stream:
                if "contentBlockDelta" in event:
                    piece = event["contentBlockDelta"].get("delta", {}).get("text")
                    if piece:
                        parts.append(piece)
                        if on_token is not None:
                            await on_token(piece)
                elif "messageStop" in event:
                    stop = event["messageStop"].get("stopReason")
                elif "metadata" in event:
                    usage = event["metadata"].get("usage")
        finally:
            stream.close()  # a stream left unread would hold its connection
        if stop is None or usage is None:
            raise ModelRetryable(f"{self._name}: the stream ended before the answer did")
        return Completion(
            text="".join(parts),
            input_tokens=int(usage.get("inputTokens") or 0),
            output_tokens=int(usage.get("outputTokens") or 0),
            stop_reason=_STOP_REASONS.get(stop, stop),
        )

    def _translate(self, exc: BaseException) -> ModelRetryable | ModelRejected:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            code = code[:1].upper() + code[1:]  # stream exception events are camelCase
            message = str(error.get("Message") or code)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if code in _RETRYABLE or (isinstance(status, int) and status >= 500):
                return ModelRetryable(
                    f"{self._name} failed ({code}): {message}",
                    retry_after=retry_after_from_headers(headers),
                    throttled=code in _THROTTLED,
                    status=status if isinstance(status, int) else None,
                )
            return ModelRejected(f"{self._name} refused the request ({code}): {message}")
        if isinstance(exc, NoCredentialsError | ParamValidationError):
            return ModelRejected(f"{self._name} cannot be called: {exc}")
        if isinstance(
            exc, BotoConnectionError | HTTPClientError | aiohttp.ClientError | TimeoutError
        ):
            return ModelRetryable(
                f"{self._name}: the connection failed or dropped ({type(exc).__name__})"
            )
        return ModelRejected(f"{self._name} failed: {exc}")
