"""OpenAI-compatible chat completions over MockTransport: request, stream, usage, errors."""

from __future__ import annotations

import httpx
import pytest

from brief.llm.chat import END, MAX_TOKENS
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.openai import OpenAIChat
from tests.unit.llm.http_fakes import Broken, Recorder, sse, stream_response


def chunk(
    content: str | None = None, finish: str | None = None, **extra: object
) -> dict[str, object]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


USAGE = {"prompt_tokens": 31, "completion_tokens": 5, "total_tokens": 36}
STREAM = sse(
    (None, chunk("")),
    (None, chunk("Scouts ")),
    (None, chunk("dance.")),
    (None, chunk(None, "stop")),
    (None, {"id": "chatcmpl-1", "choices": [], "usage": USAGE}),
    (None, "[DONE]"),
)


def model(recorder: Recorder, **kwargs: object) -> OpenAIChat:
    return OpenAIChat(
        recorder.client(),
        model="gpt-4o-mini",
        context_tokens=128_000,
        base_url="http://models.test/v1",
        api_key="sk-test",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_streams_the_answer_and_reads_usage_from_the_last_chunk() -> None:
    recorder = Recorder(lambda _: stream_response(STREAM))
    pieces: list[str] = []

    async def on_token(piece: str) -> None:
        pieces.append(piece)

    completion = await model(recorder).complete(
        "be brief", "why?", max_tokens=50, on_token=on_token
    )

    assert completion.text == "Scouts dance."
    assert pieces == ["Scouts ", "dance."]
    assert (completion.input_tokens, completion.output_tokens) == (31, 5)
    assert completion.stop_reason == END
    assert not completion.usage_estimated
    request = recorder.requests[0]
    assert request.url == "http://models.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert recorder.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "why?"},
        ],
        "max_tokens": 50,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_usage_is_estimated_when_the_server_sends_none() -> None:
    body = sse((None, chunk("Scouts dance.")), (None, chunk(None, "stop")), (None, "[DONE]"))
    completion = await model(Recorder(lambda _: stream_response(body))).complete(
        "be brief", "why do scouts dance?", max_tokens=50
    )
    assert completion.usage_estimated
    assert completion.output_tokens >= 3
    assert completion.input_tokens >= 8


async def test_a_cut_at_max_tokens_is_reported() -> None:
    body = sse((None, chunk("Scouts")), (None, chunk(None, "length")), (None, "[DONE]"))
    completion = await model(Recorder(lambda _: stream_response(body))).complete(
        "s", "p", max_tokens=1
    )
    assert completion.stop_reason == MAX_TOKENS


async def test_a_whole_answer_when_not_streaming() -> None:
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2},
    }
    recorder = Recorder(lambda _: httpx.Response(200, json=answer))
    completion = await model(
        recorder, stream=False, max_tokens_field="max_completion_tokens"
    ).complete("s", "p", max_tokens=10)
    assert (completion.text, completion.input_tokens, completion.output_tokens) == ("Hi.", 9, 2)
    assert recorder.body["max_completion_tokens"] == 10
    assert "stream_options" not in recorder.body


async def test_a_server_that_ignores_stream_and_answers_whole_is_read() -> None:
    answer = {"choices": [{"message": {"content": "Hi."}, "finish_reason": "stop"}], "usage": USAGE}
    completion = await model(Recorder(lambda _: httpx.Response(200, json=answer))).complete(
        "s", "p", max_tokens=10
    )
    assert completion.text == "Hi."


@pytest.mark.parametrize(
    ("status", "headers", "retry_after", "throttled"),
    [
        (429, {"retry-after": "3"}, 3.0, True),
        (429, {"retry-after-ms": "1500"}, 1.5, True),
        (500, {}, None, False),
        (503, {"retry-after": "2"}, 2.0, False),
        (408, {}, None, False),
    ],
)
async def test_throttling_and_server_errors_are_retryable(
    status: int, headers: dict[str, str], retry_after: float | None, throttled: bool
) -> None:
    error = {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    recorder = Recorder(lambda _: httpx.Response(status, headers=headers, json=error))
    with pytest.raises(ModelRetryable) as raised:
        await model(recorder).complete("s", "p", max_tokens=10)
    assert raised.value.retry_after == retry_after
    assert raised.value.throttled is throttled
    assert raised.value.status == status


async def test_a_request_the_provider_refuses_is_permanent_with_its_message() -> None:
    error = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    recorder = Recorder(lambda _: httpx.Response(400, json=error))
    with pytest.raises(ModelRejected) as raised:
        await model(recorder).complete("s", "p", max_tokens=10)
    assert "maximum context length is 8192 tokens" in str(raised.value)
    assert "context_length_exceeded" in str(raised.value)
    assert str(raised.value).startswith("openai:gpt-4o-mini refused the request (400)")


async def test_a_wrong_key_is_permanent() -> None:
    recorder = Recorder(
        lambda _: httpx.Response(401, json={"error": {"message": "Incorrect API key"}})
    )
    with pytest.raises(ModelRejected, match="Incorrect API key"):
        await model(recorder).complete("s", "p", max_tokens=10)


async def test_a_connection_cut_mid_stream_is_retryable() -> None:
    parts = [sse((None, chunk("Scouts ")))]
    recorder = Recorder(
        lambda _: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Broken(parts)
        )
    )
    with pytest.raises(ModelRetryable, match="dropped"):
        await model(recorder).complete("s", "p", max_tokens=10)


async def test_a_stream_that_ends_without_done_or_finish_is_retryable() -> None:
    recorder = Recorder(lambda _: stream_response(sse((None, chunk("Scouts ")))))
    with pytest.raises(ModelRetryable, match="ended before"):
        await model(recorder).complete("s", "p", max_tokens=10)


async def test_an_error_inside_the_stream_is_translated() -> None:
    body = sse(
        (None, chunk("Sc")),
        (None, {"error": {"message": "server overloaded", "type": "server_error"}}),
    )
    with pytest.raises(ModelRetryable, match="server overloaded"):
        await model(Recorder(lambda _: stream_response(body))).complete("s", "p", max_tokens=10)


async def test_a_timeout_is_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ModelRetryable, match="did not answer in time"):
        await model(Recorder(timeout)).complete("s", "p", max_tokens=10)


async def test_a_refused_connection_is_retryable() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ModelRetryable):
        await model(Recorder(refused)).complete("s", "p", max_tokens=10)


async def test_garbage_in_the_stream_is_retryable() -> None:
    body = b"data: {not json\n\n"
    with pytest.raises(ModelRetryable, match="unreadable"):
        await model(Recorder(lambda _: stream_response(body))).complete("s", "p", max_tokens=10)


async def test_no_key_sends_no_authorization_header() -> None:
    recorder = Recorder(lambda _: stream_response(STREAM))
    chat = OpenAIChat(
        recorder.client(), model="llama3", context_tokens=8192, base_url="http://ollama.test/v1"
    )
    await chat.complete("s", "p", max_tokens=10)
    assert "authorization" not in recorder.requests[0].headers
    assert chat.name == "openai:llama3"
