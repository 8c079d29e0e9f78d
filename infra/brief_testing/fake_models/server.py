"""The fake model server: the three APIs on one uvicorn app, with latency, faults and
accounting (see the package's docstring)."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from brief_testing.fake_models.answers import MESSAGE_OVERHEAD, answer_for, count_tokens, deltas
from brief_testing.fake_models.wire import (
    Api,
    ModelRequest,
    Receive,
    Scope,
    Send,
    api_for,
    aws_event,
    parse_request,
    read_body,
    seconds,
    send_body,
    send_json,
    sse,
    start_stream,
)

FaultKind = Literal["429", "500", "529", "cut", "slow", "invent"]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often (fractions of requests, drawn from a seeded RNG)."""

    rate_limit: float = 0.0  # 429 with Retry-After
    retry_after_s: float | None = 0.05  # the Retry-After sent with 429/529 (None: omitted)
    server_error: float = 0.0  # 500
    overloaded: float = 0.0  # 529 (Anthropic's "overloaded"; 503 on Bedrock)
    cut_stream: float = 0.0  # a streamed answer whose connection drops half way
    slow: float = 0.0  # answers delayed by slow_s on top of the model's latency
    slow_s: float = 1.0
    invent_citation: float = 0.0  # answers that also cite a source the prompt did not give
    max_concurrent: int | None = None  # over this many requests in flight: 429
    seed: int = 0


@dataclass
class Stats:
    """What the server saw. Tokens count completed answers only (what would be billed)."""

    requests: int = 0
    completed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    cut: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_api: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    invented: int = 0
    max_prompt_tokens: int = 0  # the largest prompt (system + user) any request sent

    def snapshot(self) -> Stats:
        """A copy that later requests do not change."""
        return replace(
            self,
            statuses=Counter(self.statuses),
            by_api=Counter(self.by_api),
            by_model=Counter(self.by_model),
        )

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready values (status codes as strings)."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not isinstance(getattr(self, f.name), Counter)
        }
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        data["by_api"] = dict(self.by_api)
        data["by_model"] = dict(self.by_model)
        return data


class _CutStream(Exception):
    """Raised inside a streaming response to drop the connection mid-answer."""


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _CutStream))


class FakeModelServer:
    """The fake APIs on 127.0.0.1 and a free port, served by uvicorn in a thread."""

    def __init__(
        self,
        *,
        latency_s: Mapping[str, float] | float = 0.0,
        token_delay_s: float = 0.0,
        context_tokens: Mapping[str, int] | None = None,
        faults: Faults | None = None,
        answer_sentences: int = 6,
        api_keys: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency_s = (
            {"*": float(latency_s)} if isinstance(latency_s, int | float) else dict(latency_s)
        )
        self.token_delay_s = token_delay_s
        self.context_tokens = dict(context_tokens or {})
        self.answer_sentences = answer_sentences
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._queued: list[tuple[FaultKind, float | None]] = []
        self._stats = Stats()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ control

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeModelServer:
        """Serve in a background thread; returns once the server accepts connections."""
        import uvicorn

        logging.getLogger("uvicorn.error").addFilter(_QUIET_CUTS)
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        config = uvicorn.Config(
            self,
            lifespan="off",
            access_log=False,
            log_config=None,  # leave the process's logging alone
            ws="none",
            http="h11",
            backlog=4096,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.005)
        self.url = f"http://{self._host}:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        """Stop serving at once (requests still in flight are dropped)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def set_faults(self, **changes: Any) -> None:
        """Change some fault settings at run time (the RNG restarts from the seed)."""
        self.faults = replace(self._faults, **changes)

    def fail_next(
        self, kind: FaultKind, count: int = 1, *, retry_after_s: float | None = None
    ) -> None:
        """Make the next `count` requests fail this way, before any random faults."""
        with self._lock:
            self._queued.extend([(kind, retry_after_s)] * count)

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats.snapshot()

    def reset(self) -> None:
        """Zero the counters and forget queued faults."""
        with self._lock:
            self._stats = Stats()
            self._queued.clear()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await read_body(receive)
        if path.startswith("/_fake/"):
            await self._control(path, method, body, send)
            return
        api = api_for(path)
        if method != "POST" or api is None:
            await send_json(send, 404, {"error": {"message": f"no route {method} {path}"}})
            return
        with self._lock:
            self._stats.requests += 1
            self._stats.by_api[api] += 1
            self._stats.in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
        token = _LANDED.set([False])
        try:
            await self._serve(api, path, headers, body, send)
        finally:
            self._land()
            _LANDED.reset(token)

    def _land(self) -> None:
        """Count this request out of `in_flight`, once: before its last byte goes out, so a
        client that starts its next request on receiving it never finds it still counted."""
        landed = _LANDED.get()
        if not landed[0]:
            landed[0] = True
            with self._lock:
                self._stats.in_flight -= 1

    async def _serve(
        self, api: Api, path: str, headers: dict[str, str], body: bytes, send: Send
    ) -> None:
        refusal = self._authorize(api, headers)
        if refusal is not None:
            await self._error(send, api, 401, refusal, "authentication_error")
            return
        try:
            request = parse_request(api, path, headers, body)
        except ValueError as exc:
            await self._error(send, api, 400, str(exc), "invalid_request_error")
            return
        with self._lock:
            self._stats.by_model[request.model] += 1
            in_flight = self._stats.in_flight
            fault, fault_retry_after = self._draw(in_flight)
            faults = self._faults
        retry_after = fault_retry_after if fault_retry_after is not None else faults.retry_after_s
        if fault == "429":
            await self._error(
                send, api, 429, "Rate limit reached; slow down", "rate_limit_error", retry_after
            )
            return
        if fault == "500":
            await self._error(send, api, 500, "The server had an error", "api_error")
            return
        if fault == "529":
            status = 503 if api == "bedrock" else 529
            await self._error(send, api, status, "Overloaded", "overloaded_error", retry_after)
            return
        input_tokens = (
            count_tokens(request.system) + count_tokens(request.prompt) + 2 * MESSAGE_OVERHEAD
        )
        with self._lock:
            self._stats.max_prompt_tokens = max(self._stats.max_prompt_tokens, input_tokens)
        window = self.context_tokens.get(request.model, self.context_tokens.get("*"))
        if window is not None and input_tokens + request.max_tokens > window:
            message = (
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {input_tokens + request.max_tokens} tokens ({input_tokens} in "
                f"the messages, {request.max_tokens} in the completion)."
            )
            await self._error(
                send, api, 400, message, "invalid_request_error", code="context_length_exceeded"
            )
            return
        delay = self._latency(request)
        if fault == "slow":
            delay += faults.slow_s
        if delay > 0:
            await asyncio.sleep(delay)
        text, output_tokens, truncated = answer_for(
            request.system,
            request.prompt,
            max_tokens=request.max_tokens,
            sentences=self.answer_sentences,
        )
        if fault == "invent":
            text += " [" + str(900 + next(self._ids) % 99) + "]"
            output_tokens += 3
            with self._lock:
                self._stats.invented += 1

        def bill() -> None:  # just before the last byte: a client never sees stale counts
            self._land()
            with self._lock:
                self._stats.completed += 1
                self._stats.input_tokens += input_tokens
                self._stats.output_tokens += output_tokens
                self._stats.statuses[200] += 1

        answer = _Answer(
            request, text, input_tokens, output_tokens, truncated, next(self._ids), bill
        )
        if not request.stream:
            await self._send_whole(send, answer)
        else:
            await _STREAMERS[api](self, send, answer, fault == "cut")

    def _draw(self, in_flight: int) -> tuple[FaultKind | None, float | None]:
        """The fault for this request (under the lock): queued first, then by chance."""
        if self._queued:
            return self._queued.pop(0)
        f = self._faults
        if f.max_concurrent is not None and in_flight > f.max_concurrent:
            return "429", None
        roll = self._rng.random
        for kind, share in (
            ("429", f.rate_limit),
            ("500", f.server_error),
            ("529", f.overloaded),
            ("cut", f.cut_stream),
            ("slow", f.slow),
            ("invent", f.invent_citation),
        ):
            if share and roll() < share:
                return kind, None  # type: ignore[return-value]
        return None, None

    def _latency(self, request: ModelRequest) -> float:
        if request.latency_s is not None:
            return request.latency_s
        return self.latency_s.get(request.model, self.latency_s.get("*", 0.0))

    def _authorize(self, api: Api, headers: Mapping[str, str]) -> str | None:
        if self.api_keys is None or api == "bedrock":
            return None
        if api == "openai":
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        else:
            given = headers.get("x-api-key", "")
        return (
            None
            if given in self.api_keys
            else "invalid x-api-key"
            if api == "anthropic"
            else "Incorrect API key provided"
        )

    async def _error(
        self,
        send: Send,
        api: Api,
        status: int,
        message: str,
        kind: str,
        retry_after: float | None = None,
        *,
        code: str | None = None,
    ) -> None:
        with self._lock:
            self._stats.statuses[status] += 1
        self._land()
        headers: list[tuple[bytes, bytes]] = []
        if retry_after is not None and status in {429, 503, 529}:
            headers.append((b"retry-after", seconds(retry_after).encode()))
        body: dict[str, Any]
        if api == "openai":
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        elif api == "anthropic":
            body = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            names = {
                400: "ValidationException",
                401: "AccessDeniedException",
                429: "ThrottlingException",
                500: "InternalServerException",
                503: "ServiceUnavailableException",
            }
            headers.append(
                (b"x-amzn-errortype", names.get(status, "InternalServerException").encode())
            )
            body = {"message": message}
        await send_json(send, status, body, headers)

    async def _control(self, path: str, method: str, body: bytes, send: Send) -> None:
        if path == "/_fake/stats":
            await send_json(send, 200, self.stats.as_dict())
        elif path == "/_fake/reset" and method == "POST":
            self.reset()
            await send_json(send, 200, {"ok": True})
        elif path == "/_fake/faults" and method == "POST":
            changes = json.loads(body or b"{}")
            known = {f.name for f in fields(Faults)}
            unknown = set(changes) - known
            if unknown:
                await send_json(send, 400, {"error": f"unknown fault settings: {sorted(unknown)}"})
                return
            self.set_faults(**changes)
            await send_json(send, 200, asdict(self.faults))
        else:
            await send_json(send, 404, {"error": "no such control"})

    # ------------------------------------------------------------------ answers

    async def _send_whole(self, send: Send, answer: _Answer) -> None:
        request = answer.request
        body: dict[str, Any]
        if request.api == "openai":
            body = {
                "id": f"chatcmpl-{answer.id}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": "length" if answer.truncated else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": answer.input_tokens,
                    "completion_tokens": answer.output_tokens,
                    "total_tokens": answer.input_tokens + answer.output_tokens,
                },
            }
        elif request.api == "anthropic":
            body = {
                "id": f"msg_{answer.id}",
                "type": "message",
                "role": "assistant",
                "model": request.model,
                "content": [{"type": "text", "text": answer.text}],
                "stop_reason": "max_tokens" if answer.truncated else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": answer.input_tokens,
                    "output_tokens": answer.output_tokens,
                },
            }
        else:
            body = {
                "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
                "stopReason": "max_tokens" if answer.truncated else "end_turn",
                "usage": {
                    "inputTokens": answer.input_tokens,
                    "outputTokens": answer.output_tokens,
                    "totalTokens": answer.input_tokens + answer.output_tokens,
                },
                "metrics": {"latencyMs": 1},
            }
        answer.bill()
        await send_json(send, 200, body)

    async def _pieces(
        self, send: Send, text: str, cut: bool, encode: Callable[[str], bytes]
    ) -> None:
        """Send the answer's words as deltas; with `cut`, drop the connection half way."""
        words = deltas(text)
        for index, piece in enumerate(words):
            if cut and index >= len(words) // 2:
                with self._lock:
                    self._stats.cut += 1
                raise _CutStream
            await send({"type": "http.response.body", "body": encode(piece), "more_body": True})
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
        if cut:
            with self._lock:
                self._stats.cut += 1
            raise _CutStream

    async def _stream_openai(self, send: Send, answer: _Answer, cut: bool) -> None:
        request = answer.request
        base = {
            "id": f"chatcmpl-{answer.id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
        }
        usage_null = {"usage": None} if request.include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **usage_null,
            }
            return sse(data)

        await start_stream(send, "text/event-stream")
        await send_body(send, chunk({"role": "assistant", "content": ""}))
        await self._pieces(send, answer.text, cut, lambda piece: chunk({"content": piece}))
        tail = chunk({}, "length" if answer.truncated else "stop")
        if request.include_usage:
            usage = {
                "prompt_tokens": answer.input_tokens,
                "completion_tokens": answer.output_tokens,
                "total_tokens": answer.input_tokens + answer.output_tokens,
            }
            tail += sse({**base, "choices": [], "usage": usage})
        answer.bill()
        await send_body(send, tail + b"data: [DONE]\n\n", more=False)

    async def _stream_anthropic(self, send: Send, answer: _Answer, cut: bool) -> None:
        request = answer.request
        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_{answer.id}",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": request.model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": answer.input_tokens, "output_tokens": 1},
            },
        }
        await start_stream(send, "text/event-stream")
        await send_body(
            send,
            sse(start, "message_start")
            + sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            + sse({"type": "ping"}, "ping"),
        )
        await self._pieces(
            send,
            answer.text,
            cut,
            lambda piece: sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                "content_block_delta",
            ),
        )
        stop = "max_tokens" if answer.truncated else "end_turn"
        answer.bill()
        await send_body(
            send,
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            + sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": answer.output_tokens},
                },
                "message_delta",
            )
            + sse({"type": "message_stop"}, "message_stop"),
            more=False,
        )

    async def _stream_bedrock(self, send: Send, answer: _Answer, cut: bool) -> None:
        await start_stream(send, "application/vnd.amazon.eventstream")
        await send_body(send, aws_event("messageStart", {"role": "assistant"}))
        await self._pieces(
            send,
            answer.text,
            cut,
            lambda piece: aws_event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
            ),
        )
        stop = "max_tokens" if answer.truncated else "end_turn"
        usage = {
            "inputTokens": answer.input_tokens,
            "outputTokens": answer.output_tokens,
            "totalTokens": answer.input_tokens + answer.output_tokens,
        }
        answer.bill()
        await send_body(
            send,
            aws_event("contentBlockStop", {"contentBlockIndex": 0})
            + aws_event("messageStop", {"stopReason": stop})
            + aws_event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}),
            more=False,
        )


_QUIET_CUTS = _QuietCuts()
# Per request (each runs in its own task): whether it has left `in_flight` yet.
_LANDED: contextvars.ContextVar[list[bool]] = contextvars.ContextVar("landed")

_STREAMERS: dict[Api, Callable[[FakeModelServer, Send, Any, bool], Awaitable[None]]] = {
    "openai": FakeModelServer._stream_openai,
    "anthropic": FakeModelServer._stream_anthropic,
    "bedrock": FakeModelServer._stream_bedrock,
}


@dataclass(frozen=True)
class _Answer:
    request: ModelRequest
    text: str
    input_tokens: int
    output_tokens: int
    truncated: bool
    id: int
    bill: Callable[[], None]
