"""Provider errors: how long they ask us to wait, and what they say, whatever their shape."""

from __future__ import annotations

import pytest

from brief.llm.errors import provider_message, retry_after_from_headers

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise one wins
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:00:00 GMT"}, 0.0),  # in the past: now
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_http_dates(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after_from_headers(headers, now=lambda: NOW) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error": {"message": "This model\'s maximum context length is 8192 tokens.",'
            b' "type": "invalid_request_error", "code": "context_length_exceeded"}}',
            "This model's maximum context length is 8192 tokens. (context_length_exceeded)",
        ),
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "Overloaded",
        ),
        (b'{"error": "model \\"llama9\\" not found"}', 'model "llama9" not found'),  # Ollama
        (
            b'{"object": "error", "message": "max_tokens is too large", "code": 400}',
            "max_tokens is too large",
        ),
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", "Bad Request"),
    ],
)
def test_provider_message_finds_the_human_part(body: bytes, expected: str) -> None:
    assert provider_message(body, default="Bad Request") == expected


def test_provider_message_is_bounded() -> None:
    message = provider_message(b'{"error": {"message": "' + b"x" * 5000 + b'"}}', default="")
    assert len(message) <= 300
