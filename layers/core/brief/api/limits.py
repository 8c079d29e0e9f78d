"""The most of a request body the API reads: more is a 413, however the body is framed."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brief.api.problems import problem


class BodyLimit:
    """ASGI middleware: refuse a request body over `max_bytes`, and stop reading it there.

    A declared `Content-Length` over the limit is answered before anything is read. A body
    without one (chunked) is counted as it arrives: the read that passes the limit raises a
    413 to the route reading it (FastAPI re-raises an HTTPException from a body read), and
    the rest is never read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._max_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            detail = f"The body is {int(declared):,} bytes; the limit is {limit:,}."
            await problem(413, "Request too large", detail)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"The body is over the limit of {limit:,} bytes.")
            return message

        await self._app(scope, counted, send)
