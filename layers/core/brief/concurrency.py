"""Running awaitables together without leaving orphans behind.

`asyncio.gather` returns at the first exception but leaves the other awaitables running:
in a Lambda container they run on into the next invocation, or are destroyed half-way when
the loop closes (an aiobotocore request then dies in the garbage collector). `all_of`
cancels and awaits the rest before it re-raises the first failure, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
R = TypeVar("R")


async def all_of(*awaitables: Awaitable[T]) -> list[T]:
    """Every result in order; on a failure, the others are cancelled first."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Two results of different types, with `all_of`'s cancellation on failure."""
    results: list[object] = await all_of(first, second)
    return results[0], results[1]  # type: ignore[return-value]


async def at_once(into: Callable[..., R], **reads: Awaitable[Any]) -> R:
    """One round of named reads: every awaitable runs at once, and `into` (a dataclass that
    names the round's results) is built from their results by name; on a failure the others
    are cancelled first, as in `all_of`."""
    results = await all_of(*reads.values())
    return into(**dict(zip(reads, results, strict=True)))


async def ready(value: T) -> T:
    """An awaitable of a value already at hand: the place of a read a caller could skip."""
    return value


async def nothing() -> None:
    """An awaitable of None: the place of a read that is not needed (`at_once`, `all_of`)."""
    return None


async def each_bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[R]], limit: int
) -> list[R]:
    """`work` over every item in order, at most `limit` at once: `limit` workers share one
    iterator, so a thousand items never become a thousand tasks."""
    results: dict[int, R] = {}
    pending = iter(enumerate(items))

    async def worker() -> None:
        for n, item in pending:  # each item is taken by exactly one worker
            results[n] = await work(item)

    await all_of(*(worker() for _ in range(min(limit, len(items)))))
    return [results[n] for n in range(len(items))]
