"""Running awaitables together without leaving orphans behind.

`asyncio.gather` returns at the first exception but leaves the other awaitables running:
in a Lambda container they run on into the next invocation, or are destroyed half-way when
the loop closes (an aiobotocore request then dies in the garbage collector). `all_of`
cancels and awaits the rest before it re-raises the first failure, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


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


async def nothing() -> None:
    """An awaitable of None: the place of a read that is not needed, in `both` or `all_of`."""
    return None
