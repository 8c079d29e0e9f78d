"""One event loop per Lambda container, and the clients built on it, reused while warm.

`asyncio.run` per invocation would close the loop and break every cached aiobotocore and
httpx client ("Event loop is closed"), and building an aiobotocore client costs ~100 ms.
A `Container` owns one loop for the life of the execution environment; the wiring it
holds builds each client on first use, on that loop, and keeps it.

Each invocation runs inside `Container.invocation(context)`: its log lines carry Lambda's
request id (and each SQS record's lines its message id), and its metrics are flushed as
CloudWatch EMF when it ends. In Lambda the first use also turns on Powertools' JSON logger
and the metrics; elsewhere (tests, the local stack) both stay as they are. The first
invocation ends by freezing what the cold start built (`gc.freeze`), out of the collector's
reach for the rest of the container's life.

A handler module (`functions/<name>/app.py`) keeps its `Container` in the global named
`HANDLER_CONTAINER` ("container"): a host that runs many functions in one process (the local
stack) finds it there (`container_of`), sets it up (`Container.configure_host`) before the
first invocation, and closes it when the function's environment ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from brief import logs, metrics
from brief.batch import BatchResponse, SqsRecord, process_batch
from brief.concurrency import all_of
from brief.settings import Settings
from brief.wiring import ClientHook, Wiring

R = TypeVar("R")

HANDLER_CONTAINER = "container"


class Container:
    """The per-container state of a handler: its loop and its lazily built wiring.

    In Lambda it takes no arguments. A host that runs many functions in one process gives it
    the function's variables (`environment`, not the process's) and a `client_hook` for each
    AWS client its wiring builds; `freeze_after_cold_start` says whether the cold invocation
    ends with `gc.freeze()` (None: only in Lambda).
    """

    def __init__(
        self,
        *,
        environment: Mapping[str, str] | None = None,
        client_hook: ClientHook | None = None,
        freeze_after_cold_start: bool | None = None,
    ) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wiring: Wiring | None = None
        self._observing = False
        self.invocations = 0
        self.environment = environment
        self.client_hook = client_hook
        self.freeze_after_cold_start = freeze_after_cold_start

    def configure_host(
        self,
        *,
        environment: Mapping[str, str] | None,
        client_hook: ClientHook | None = None,
        freeze_after_cold_start: bool | None = None,
    ) -> None:
        """What a host gives a handler module's container (see `__init__`); only before the
        wiring is built, which reads them once."""
        if self._wiring is not None:
            raise RuntimeError("a container is configured before its first invocation")
        self.environment = environment
        self.client_hook = client_hook
        self.freeze_after_cold_start = freeze_after_cold_start

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
            self._observe()
            self._wiring = Wiring.from_environment(self.environment, client_hook=self.client_hook)
        return self._wiring

    def _observe(self) -> None:
        """In Lambda: Powertools' JSON logs and EMF metrics, once per container."""
        if self._observing:
            return
        self._observing = True
        if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            logs.configure_lambda(os.environ.get("LOG_LEVEL", "INFO"))
            metrics.configure()

    @contextlib.contextmanager
    def invocation(self, context: Any, *, correlation_id: str | None = None) -> Iterator[None]:
        """One invocation: its log lines name its request, its metrics go out at its end."""
        self._observe()
        self.invocations += 1
        cold = self.invocations == 1
        logs.bind_invocation(
            getattr(context, "aws_request_id", None), cold_start=cold, correlation_id=correlation_id
        )
        if cold:
            metrics.count(
                "ColdStart", function_name=getattr(context, "function_name", None) or "unknown"
            )
        try:
            yield
        finally:
            metrics.flush()
            if cold:
                self._freeze()

    def _freeze(self) -> None:
        """Keep the collector off what the cold start built: modules, settings, clients and
        their service models (~130k objects in the summarize function) live as long as the
        container, yet every full collection of a warm invocation would walk them all again
        (~60 ms on the benchmark's machine). Frozen, it walks only what came after."""
        freeze = self.freeze_after_cold_start
        if freeze is None:
            freeze = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
        if freeze:
            gc.freeze()

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


def container_of(module: ModuleType) -> Container:
    """The `Container` a handler module keeps as `HANDLER_CONTAINER`; TypeError if it has
    none, as a host cannot give the function its variables or close its clients then."""
    container = getattr(module, HANDLER_CONTAINER, None)
    if not isinstance(container, Container):
        raise TypeError(
            f"handler module {module.__name__} has no brief.runtime.Container named "
            f"{HANDLER_CONTAINER!r}"
        )
    return container


async def _call(work: Callable[[Wiring], Awaitable[R]], wiring: Wiring) -> R:
    return await work(wiring)


RecordHandler = Callable[[SqsRecord], Awaitable[object]]
LambdaHandler = Callable[[dict[str, Any], Any], BatchResponse]


def sqs_handler(
    container: Container,
    build: Callable[[Wiring, Sequence[SqsRecord]], Awaitable[RecordHandler]],
    *,
    concurrency: Callable[[Settings], int] = lambda s: s.summarize_concurrency,
) -> LambdaHandler:
    """A Lambda handler for an SQS-triggered stage: one container, partial batch failures.

    `build` turns the container's wiring (and the batch's records, for a stage whose records
    share work) into the per-record coroutine; it runs once per invocation but reuses the
    wiring's clients, so a warm invocation builds nothing.
    """

    async def batch(event: dict[str, Any], wiring: Wiring) -> BatchResponse:
        records: Sequence[SqsRecord] = event.get("Records") or []
        handle = await build(wiring, records)

        async def record(record: SqsRecord) -> object:
            logs.bind_message(str(record.get("messageId") or ""))  # this record's task only
            return await handle(record)

        async def release(failed: Sequence[tuple[SqsRecord, int]]) -> None:
            releaser = await wiring.releaser()
            by_queue: dict[str, list[tuple[str, int]]] = {}
            for failed_record, seconds in failed:
                arn, handle = (
                    failed_record.get("eventSourceARN"),
                    failed_record.get("receiptHandle"),
                )
                if arn and handle:
                    by_queue.setdefault(str(arn), []).append((str(handle), seconds))
            await all_of(*(releaser.release(arn, entries) for arn, entries in by_queue.items()))

        return await process_batch(
            records, record, concurrency=concurrency(wiring.settings), release=release
        )

    def handler(event: dict[str, Any], context: Any) -> BatchResponse:
        with container.invocation(context):
            return container.run(lambda wiring: batch(event, wiring))

    return handler
