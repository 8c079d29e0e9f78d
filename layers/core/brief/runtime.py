"""One event loop per Lambda container, and the clients built on it, reused while warm.

`asyncio.run` per invocation would close the loop and break every cached aiobotocore and
httpx client ("Event loop is closed"), and building an aiobotocore client costs ~100 ms.
A `Container` owns one loop for the life of the execution environment; the wiring it
holds builds each client on first use, on that loop, and keeps it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from brief import logs
from brief.batch import BatchResponse, SqsRecord, process_batch
from brief.settings import Settings
from brief.wiring import Wiring

R = TypeVar("R")


class Container:
    """The per-container state of a handler: its loop and its lazily built wiring."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wiring: Wiring | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The container's loop, created on first use and installed as the thread's loop."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop

    @property
    def wiring(self) -> Wiring:
        """Settings and clients; settings are read from the environment on first use."""
        if self._wiring is None:
            if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda: JSON lines for CloudWatch
                logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
            self._wiring = Wiring.from_environment()
        return self._wiring

    async def aclose_wiring(self) -> None:
        """Close the clients when they were built on another loop (uvicorn's, locally)."""
        if self._wiring is not None:
            await self._wiring.aclose()
            self._wiring = None

    def close(self) -> None:
        """Close the clients and the loop (the local stack's shutdown; Lambda just freezes)."""
        if self._loop is None or self._loop.is_closed():
            return
        if self._wiring is not None:
            self._loop.run_until_complete(self._wiring.aclose())
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def run(self, work: Callable[[Wiring], Awaitable[R]]) -> R:
        """Run one invocation's coroutine to completion on the container's loop."""
        return self.loop.run_until_complete(_call(work, self.wiring))


async def _call(work: Callable[[Wiring], Awaitable[R]], wiring: Wiring) -> R:
    return await work(wiring)


RecordHandler = Callable[[SqsRecord], Awaitable[object]]
LambdaHandler = Callable[[dict[str, Any], Any], BatchResponse]


def sqs_handler(
    container: Container,
    build: Callable[[Wiring], Awaitable[RecordHandler]],
    *,
    concurrency: Callable[[Settings], int] = lambda s: s.summarize_concurrency,
) -> LambdaHandler:
    """A Lambda handler for an SQS-triggered stage: one container, partial batch failures.

    `build` turns the container's wiring into the per-record coroutine; it runs once per
    invocation but reuses the wiring's clients, so a warm invocation builds nothing.
    """

    async def batch(event: dict[str, Any], wiring: Wiring) -> BatchResponse:
        handle = await build(wiring)
        records = event.get("Records") or []
        return await process_batch(records, handle, concurrency=concurrency(wiring.settings))

    def handler(event: dict[str, Any], context: Any) -> BatchResponse:
        return container.run(lambda wiring: batch(event, wiring))

    return handler
