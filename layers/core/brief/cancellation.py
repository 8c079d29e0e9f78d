"""Stopping a stage's work soon after its job is cancelled.

Cancel writes `keys.cancelled`, and every stage reads it when a message arrives.
Work already in flight (a slow page, a model call) would still run to its end, seconds or up
to its timeout, and then write its results after the cancel. `CancelWatch.run` runs such
work beside a watcher: once the work has run for `grace_s` (so work that ends quickly costs
no extra read), the watcher reads the marker every `poll_s` and, when it appears, cancels
the work and raises `StoppedByCancel`. The stage then writes nothing more and returns, so
its record completes.

Watchers of the same job in one container (the summaries of a job's sources, delivered in one
batch) share their reads: one read per `poll_s` per job, not one per watcher. Five summaries
of three seconds made 30 reads; they make about 6.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from brief.errors import RetryableError

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoppedByCancel(Exception):
    """The job was cancelled while the work ran, and the work was stopped.

    Not a `BriefError`: a stage catches it and returns (its record completes); it is never
    a failure for SQS to retry.
    """


@dataclass(frozen=True)
class CancelWatch:
    """How often a stage looks for its job's cancel marker while its work is in flight."""

    grace_s: float = 0.5  # work that ends within this makes no extra read
    poll_s: float = 0.5  # then one read of the marker this often

    async def run(
        self,
        cancelled: Callable[[], Awaitable[bool]],
        work: Awaitable[T],
        *,
        shared: str | None = None,
    ) -> T:
        """`work`'s result; StoppedByCancel as soon as `cancelled()` says so (the work is
        cancelled and has unwound before this raises). Watchers given the same `shared` key
        (the job's id) on one event loop share each read made within `poll_s`."""
        task = asyncio.ensure_future(work)
        read = cancelled if shared is None else _SharedRead(shared, cancelled, self.poll_s)
        watcher = asyncio.create_task(self._watch(read))
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the invocation itself is cancelled: no task outlives it
            task.cancel()
            watcher.cancel()
            await asyncio.gather(task, watcher, return_exceptions=True)
            raise
        task.cancel()  # no-op when it finished; else the watcher found the marker (or failed)
        watcher.cancel()
        await asyncio.wait((task, watcher))  # the work unwinds before the stage goes on
        if task.cancelled() and watcher.done() and not watcher.cancelled():
            watcher.result()  # a watcher that failed raises its own error
            raise StoppedByCancel
        return task.result()

    async def _watch(self, cancelled: Callable[[], Awaitable[bool]]) -> None:
        """Return once the marker is there; a read that fails is retried at the next poll."""
        await asyncio.sleep(self.grace_s)
        while True:
            try:
                if await cancelled():
                    return
            except RetryableError as exc:
                log.warning("could not read the cancel marker", extra={"reason": str(exc)})
            await asyncio.sleep(self.poll_s)


# Per event loop (a container has one), the latest read of each shared key: when it started
# and its outcome. Entries of loops that are gone go with them.
_Reads = dict[str, tuple[float, "asyncio.Future[bool]"]]
_LATEST: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reads] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _SharedRead:
    """`cancelled()`, or the outcome of a read of the same key begun less than `fresh_s` ago
    (or still in flight)."""

    key: str
    cancelled: Callable[[], Awaitable[bool]]
    fresh_s: float

    async def __call__(self) -> bool:
        loop = asyncio.get_running_loop()
        latest = _LATEST.setdefault(loop, {})
        now = loop.time()
        held = latest.get(self.key)
        if held is None or (held[1].done() and now - held[0] >= self.fresh_s * 0.9):
            if len(latest) > 1_000:  # keys of jobs long gone
                for key in [k for k, (at, _) in latest.items() if now - at > 60]:
                    del latest[key]
            read = asyncio.ensure_future(self.cancelled())
            # Its watchers may all be gone when a read fails: the error is theirs to log.
            read.add_done_callback(lambda done: done.cancelled() or done.exception())
            held = (now, read)
            latest[self.key] = held
        return await asyncio.shield(held[1])
