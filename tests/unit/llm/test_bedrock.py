"""Bedrock Converse with an in-memory client raising botocore's own error shapes.

tests/integration/test_llm_providers.py runs the same adapter through a real aioboto3
client against the fake server's event stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

from brief.llm.bedrock import BedrockChat
from brief.llm.chat import MAX_TOKENS
from brief.llm.errors import ModelRejected, ModelRetryable


def client_error(code: str, status: int, message: str = "msg") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
        },
        "ConverseStream",
    )


class FakeBedrock:
    """converse / converse_stream answering with `events`, or raising `error`."""

    def __init__(
        self,
        events: list[dict[str, Any]] | None = None,
        error: BaseException | None = None,
        stream_error: BaseException | None = None,
    ) -> None:
        self.events = events or []
        self.error = error
        self.stream_error = stream_error
        self.requests: list[dict[str, Any]] = []
        self.closed = 0

    async def converse_stream(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error:
            raise self.error
        return {"stream": EventStream(self)}

    async def converse(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error:
            raise self.error
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": "Quorum wins."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 20, "outputTokens": 3, "totalTokens": 23},
        }


class EventStream:
    """What botocore's event stream offers: async iteration, and close()."""

    def __init__(self, bedrock: FakeBedrock) -> None:
        self.bedrock = bedrock
        self.closed = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        for event in self.bedrock.events:
            yield event
        if self.bedrock.stream_error:
            raise self.bedrock.stream_error

    def close(self) -> None:
        self.closed = True
        self.bedrock.closed += 1


EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Quorum "}}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "wins."}}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "max_tokens"}},
    {
        "metadata": {
            "usage": {"inputTokens": 20, "outputTokens": 3, "totalTokens": 23},
            "metrics": {"latencyMs": 5},
        }
    },
]
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


async def test_streams_deltas_and_reads_usage_from_metadata() -> None:
    client = FakeBedrock(EVENTS)
    pieces: list[str] = []

    async def on_token(piece: str) -> None:
        pieces.append(piece)

    chat = BedrockChat(client, model=MODEL, context_tokens=200_000, temperature=0.0)
    completion = await chat.complete("be brief", "why?", max_tokens=32, on_token=on_token)
    assert completion.text == "Quorum wins."
    assert pieces == ["Quorum ", "wins."]
    assert (completion.input_tokens, completion.output_tokens) == (20, 3)
    assert completion.stop_reason == MAX_TOKENS
    assert chat.name == f"bedrock:{MODEL}"
    assert client.requests == [
        {
            "modelId": MODEL,
            "system": [{"text": "be brief"}],
            "messages": [{"role": "user", "content": [{"text": "why?"}]}],
            "inferenceConfig": {"maxTokens": 32, "temperature": 0.0},
        }
    ]


async def test_converse_without_streaming() -> None:
    completion = await BedrockChat(
        FakeBedrock(), model=MODEL, context_tokens=1, stream=False
    ).complete("s", "p", max_tokens=8)
    assert (completion.text, completion.input_tokens, completion.output_tokens) == (
        "Quorum wins.",
        20,
        3,
    )


@pytest.mark.parametrize(
    ("code", "status", "throttled"),
    [
        ("ThrottlingException", 429, True),
        ("ServiceUnavailableException", 503, True),
        ("ModelNotReadyException", 429, False),
        ("InternalServerException", 500, False),
        ("ModelTimeoutException", 408, False),
    ],
)
async def test_throttling_and_unavailability_are_retryable(
    code: str, status: int, throttled: bool
) -> None:
    chat = BedrockChat(FakeBedrock(error=client_error(code, status)), model=MODEL, context_tokens=1)
    with pytest.raises(ModelRetryable) as raised:
        await chat.complete("s", "p", max_tokens=8)
    assert raised.value.throttled is throttled


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
    ],
)
async def test_validation_and_access_errors_are_permanent(code: str, status: int) -> None:
    error = client_error(code, status, "Input is too long for requested model.")
    chat = BedrockChat(FakeBedrock(error=error), model=MODEL, context_tokens=1)
    with pytest.raises(ModelRejected, match="Input is too long"):
        await chat.complete("s", "p", max_tokens=8)


async def test_an_exception_event_mid_stream_is_translated() -> None:
    error = EventStreamError(
        {"Error": {"Code": "throttlingException", "Message": "Too many tokens"}}, "ConverseStream"
    )
    chat = BedrockChat(FakeBedrock(EVENTS[:2], stream_error=error), model=MODEL, context_tokens=1)
    with pytest.raises(ModelRetryable, match="Too many tokens") as raised:
        await chat.complete("s", "p", max_tokens=8)
    assert raised.value.throttled
    assert chat_client_closed(chat) == 1  # the broken stream's connection is released


def chat_client_closed(chat: BedrockChat) -> int:
    client: FakeBedrock = chat._client
    return client.closed


async def test_a_read_timeout_is_retryable() -> None:
    error = ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
    chat = BedrockChat(FakeBedrock(EVENTS[:2], stream_error=error), model=MODEL, context_tokens=1)
    with pytest.raises(ModelRetryable, match="dropped"):
        await chat.complete("s", "p", max_tokens=8)


async def test_a_stream_without_its_stop_and_usage_is_retryable() -> None:
    chat = BedrockChat(FakeBedrock(EVENTS[:3]), model=MODEL, context_tokens=1)
    with pytest.raises(ModelRetryable, match="ended before"):
        await chat.complete("s", "p", max_tokens=8)
