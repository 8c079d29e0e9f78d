"""Sweeper: run on a schedule, fails every job that made no progress past its deadline."""

from __future__ import annotations

from typing import Any

from brief.runtime import Container
from brief.wiring import Wiring

container = Container()


async def _sweep(wiring: Wiring) -> dict[str, object]:
    sweeper = await wiring.sweeper()
    return (await sweeper.sweep()).as_dict()


def handler(event: dict[str, Any], context: Any) -> dict[str, object]:
    """One sweep per scheduled event (the event itself carries nothing the sweep needs)."""
    with container.invocation(context):
        return container.run(_sweep)
