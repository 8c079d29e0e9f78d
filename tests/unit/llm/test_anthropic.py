"""Anthropic Messages over MockTransport: headers, named events, usage, errors mid-stream."""

from __future__ import annotations

import httpx
import pytest

from brief.llm.anthropic import AnthropicChat
from brief.llm.chat import END, MAX_TOKENS
from brief.llm.errors import ModelRejected, ModelRetryable
from tests.unit.llm.http_fakes import Broken, Recorder, sse, stream_response


def events(*texts: str, stop: str = "end_turn", output_tokens: int = 6) -> list[tuple[str, object]]:
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "usage": {
                        "input_tokens": 40,
                        "cache_read_input_tokens": 10,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        *[
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": t},
                },
            )
            for t in texts
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def model(recorder: Recorder, **kwargs: object) -> AnthropicChat:
    return AnthropicChat(
        recorder.client(),
        model="claude-3-5-haiku-latest",
        context_tokens=200_000,
        api_key="sk-ant-test",
        base_url="http://anthropic.test",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_streams_text_deltas_and_counts_every_input_token() -> None:
    recorder = Recorder(lambda _: stream_response(sse(*events("Quorum ", "wins."))))
    pieces: list[str] = []

    async def on_token(piece: str) -> None:
        pieces.append(piece)

    completion = await model(recorder).complete(
        "be brief", "why?", max_tokens=64, on_token=on_token
    )

    assert completion.text == "Quorum wins."
    assert pieces == ["Quorum ", "wins."]
    assert completion.input_tokens == 50  # cache reads are input tokens too
    assert completion.output_tokens == 6
    assert completion.stop_reason == END
    request = recorder.requests[0]
    assert request.url == "http://anthropic.test/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert recorder.body == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": "why?"}],
        "stream": True,
    }


async def test_max_tokens_stop_is_normalized() -> None:
    recorder = Recorder(lambda _: stream_response(sse(*events("Quo", stop="max_tokens"))))
    completion = await model(recorder).complete("s", "p", max_tokens=1)
    assert completion.stop_reason == MAX_TOKENS


async def test_a_whole_answer_when_not_streaming() -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "content": [{"type": "text", "text": "Quorum wins."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }
    recorder = Recorder(lambda _: httpx.Response(200, json=answer))
    completion = await model(recorder, stream=False, temperature=0.2).complete(
        "s", "p", max_tokens=10
    )
    assert (completion.text, completion.input_tokens, completion.output_tokens) == (
        "Quorum wins.",
        12,
        4,
    )
    assert recorder.body["temperature"] == 0.2


@pytest.mark.parametrize(
    ("status", "kind", "throttled"),
    [(429, "rate_limit_error", True), (529, "overloaded_error", True), (500, "api_error", False)],
)
async def test_throttling_overload_and_server_errors_are_retryable(
    status: int, kind: str, throttled: bool
) -> None:
    error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    recorder = Recorder(lambda _: httpx.Response(status, headers={"retry-after": "4"}, json=error))
    with pytest.raises(ModelRetryable) as raised:
        await model(recorder).complete("s", "p", max_tokens=10)
    assert raised.value.retry_after == 4.0
    assert raised.value.throttled is throttled


async def test_an_invalid_request_is_permanent_with_the_providers_message() -> None:
    error = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 210000 tokens > 200000 maximum",
        },
    }
    recorder = Recorder(lambda _: httpx.Response(400, json=error))
    with pytest.raises(ModelRejected, match="prompt is too long"):
        await model(recorder).complete("s", "p", max_tokens=10)


async def test_an_overload_after_the_stream_began_is_retryable() -> None:
    body = sse(
        *events("Quorum ")[:3],
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    )
    with pytest.raises(ModelRetryable, match="overloaded_error") as raised:
        await model(Recorder(lambda _: stream_response(body))).complete("s", "p", max_tokens=10)
    assert raised.value.throttled


async def test_a_stream_cut_before_message_stop_is_retryable() -> None:
    parts = [sse(*events("Quorum ")[:4])]
    recorder = Recorder(
        lambda _: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Broken(parts)
        )
    )
    with pytest.raises(ModelRetryable):
        await model(recorder).complete("s", "p", max_tokens=10)


async def test_a_stream_that_ends_cleanly_but_early_is_retryable() -> None:
    body = sse(*events("Quorum ")[:4])
    with pytest.raises(ModelRetryable, match="ended before"):
        await model(Recorder(lambda _: stream_response(body))).complete("s", "p", max_tokens=10)
