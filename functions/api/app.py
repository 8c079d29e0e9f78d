"""API: FastAPI behind API Gateway through Mangum; the same `app` runs under uvicorn locally."""

from __future__ import annotations

import asyncio
from typing import Any

from mangum import Mangum

from brief.api import create_app
from brief.runtime import Container

container = Container()
app = create_app(lambda: container.wiring)
# Mangum adopts the thread's event loop when it is built (and makes one if there is none):
# hand it the container's loop, so requests and the clients they cache share one loop.
asyncio.set_event_loop(container.loop)
_asgi = Mangum(app, lifespan="off")  # Mangum would run the lifespan on every invocation


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one API Gateway event on the container's loop, so clients stay warm."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    with container.invocation(context, correlation_id=request_id):
        asyncio.set_event_loop(container.loop)  # Mangum runs on the thread's current loop
        return _asgi(event, context)
