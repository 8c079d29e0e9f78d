"""The three model APIs on the wire: which API a path is, a request's parts, and the ASGI,
server-sent event and AWS event stream framing of the answers."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Api = Literal["openai", "anthropic", "bedrock"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ModelRequest:
    """One model call, as any of the three APIs asked for it."""

    api: Api
    model: str
    system: str
    prompt: str
    max_tokens: int
    stream: bool
    include_usage: bool
    latency_s: float | None


# ---------------------------------------------------------------------- request parsing


def api_for(path: str) -> Api | None:
    """Which API a request's path speaks; None for a path none of them has."""
    if path in {"/v1/chat/completions", "/chat/completions"}:
        return "openai"
    if path == "/v1/messages":
        return "anthropic"
    if path.startswith("/model/") and path.endswith(("/converse", "/converse-stream")):
        return "bedrock"
    return None


def parse_request(api: Api, path: str, headers: Mapping[str, str], body: bytes) -> ModelRequest:
    """The request's model, prompt and options; ValueError with the message the real API would
    give when the body lacks what it requires."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    latency = headers.get("x-fake-latency")
    latency_s = float(latency) if latency else None
    if api == "openai":
        messages = data.get("messages")
        if not data.get("model") or not isinstance(messages, list) or not messages:
            raise ValueError("model and messages are required")
        system = "\n".join(
            _text(m.get("content")) for m in messages if m.get("role") in {"system", "developer"}
        )
        prompt = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
        max_tokens = data.get("max_completion_tokens") or data.get("max_tokens") or 4096
        options = data.get("stream_options") or {}
        return ModelRequest(
            "openai", str(data["model"]), system, prompt, int(max_tokens), bool(data.get("stream")),
            bool(options.get("include_usage")), latency_s,
        )  # fmt: skip
    if api == "anthropic":
        if headers.get("anthropic-version") is None:
            raise ValueError("anthropic-version: header is required")
        messages = data.get("messages")
        if not data.get("model") or not isinstance(messages, list) or not messages:
            raise ValueError("model: Field required")
        if not isinstance(data.get("max_tokens"), int):
            raise ValueError("max_tokens: Field required")
        system = _text(data.get("system"))
        prompt = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
        return ModelRequest(
            "anthropic", str(data["model"]), system, prompt, data["max_tokens"],
            bool(data.get("stream")), True, latency_s,
        )  # fmt: skip
    model = path.split("/")[2]
    from urllib.parse import unquote

    messages = data.get("messages") or []
    system = "\n".join(_text(block) for block in data.get("system") or [])
    prompt = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
    if not prompt:
        raise ValueError("messages must contain a user message")
    max_tokens = (data.get("inferenceConfig") or {}).get("maxTokens") or 4096
    return ModelRequest(
        "bedrock", unquote(model), system, prompt, int(max_tokens),
        path.endswith("-stream"), True, latency_s,
    )  # fmt: skip


def _text(content: object) -> str:
    """Text of a message's content: a string, a block, or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "\n".join(_text(part) for part in content)
    return ""


# ---------------------------------------------------------------------- wire formats


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many ASGI messages carry it."""
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def send_json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole JSON response."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def start_stream(send: Send, content_type: str) -> None:
    """The head of a streamed answer (SSE or AWS event stream)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache")],
        }
    )


async def send_body(send: Send, data: bytes, *, more: bool = True) -> None:
    """One piece of a streamed answer; `more=False` ends it."""
    await send({"type": "http.response.body", "body": data, "more_body": more})


def sse(data: object, event: str | None = None) -> bytes:
    """One server-sent event, named when `event` is given (Anthropic names its events)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def aws_event(event_type: str, payload: object, *, message_type: str = "event") -> bytes:
    """One AWS event stream message: prelude, CRC, string headers, JSON payload, CRC."""
    kind_header = ":exception-type" if message_type == "exception" else ":event-type"
    headers = {
        kind_header: event_type,
        ":content-type": "application/json",
        ":message-type": message_type,
    }
    head = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(head) + len(body) + 4, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + body
    return message + struct.pack(">I", zlib.crc32(message))


def seconds(value: float) -> str:
    """Seconds as a header value: whole seconds bare, else three decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
