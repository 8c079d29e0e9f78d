"""EventBridge's schedules, on this machine: a function with a Schedule event is invoked
every `rate(...)`, with the event EventBridge would send.

Like the template's `MaximumRetryAttempts: 0`, a failed invocation is logged and not
retried: the next one comes at its time. Runs of one schedule never overlap here (an
on-demand `run_now` waits for a periodic run in flight, and the other way round).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

Invoke = Callable[[dict[str, Any]], Awaitable[Any]]


def scheduled_event(rule_arn: str, *, region: str, account: str) -> dict[str, Any]:
    """The event EventBridge sends a function on each tick of a schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Schedule:
    """Invokes one function every `every_s` seconds until stopped."""

    def __init__(
        self,
        name: str,
        invoke: Invoke,
        every_s: float,
        *,
        rule_arn: str,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> None:
        self.name = name
        self.every_s = every_s
        self._invoke = invoke
        self._rule_arn = rule_arn
        self._region = region
        self._account = account
        self._stopping = asyncio.Event()
        self._running = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.invocations = 0
        self.failures = 0
        self.last_result: Any = None
        # Called with each run's response (a chaos run counts the sweeper's resumed fan-ins).
        self.on_result: Callable[[Any], None] | None = None

    def start(self) -> None:
        """Start ticking; the first run comes one interval from now, as EventBridge's does."""
        self._task = asyncio.create_task(self._tick(), name=f"schedule-{self.name}")

    async def run_now(self) -> Any:
        """Invoke once now (tests, `brief local`); the handler's response."""
        async with self._running:
            self.invocations += 1
            event = scheduled_event(self._rule_arn, region=self._region, account=self._account)
            self.last_result = await self._invoke(event)
            if self.on_result is not None:
                self.on_result(self.last_result)
            return self.last_result

    async def stop(self) -> None:
        """Stop ticking; a run in flight finishes first (its writes are not cut off)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _tick(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.every_s)
                return
            except TimeoutError:
                pass
            try:
                await self.run_now()
            except Exception:  # a function's error, as EventBridge would log it; keep ticking
                self.failures += 1
                log.exception("scheduled run of %s failed", self.name)
