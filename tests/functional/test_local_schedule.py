"""The local stack's schedules: a scheduled function runs at its rate, on demand, and stops
cleanly (a run in flight finishes, none starts after)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from brief_local.schedule import Schedule

RULE = "arn:aws:events:us-east-1:123456789012:rule/brief-SweeperFunctionSweep"


async def until(condition: Any, limit: int = 5000) -> None:
    """Yield to the loop until `condition()` holds (bounded by steps, not by time)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


async def test_a_schedule_invokes_its_function_with_eventbridges_event_each_tick() -> None:
    events: list[dict[str, Any]] = []

    async def invoke(event: dict[str, Any]) -> dict[str, int]:
        events.append(event)
        return {"open": len(events)}

    schedule = Schedule("SweeperFunction.Sweep", invoke, 0.001, rule_arn=RULE)
    schedule.start()
    await until(lambda: len(events) >= 3)
    await schedule.stop()

    assert schedule.last_result == {"open": len(events)}
    assert {e["detail-type"] for e in events} == {"Scheduled Event"}
    assert {e["source"] for e in events} == {"aws.events"}
    assert all(e["resources"] == [RULE] for e in events)
    assert len({e["id"] for e in events}) == len(events)


async def test_stop_lets_the_run_in_flight_finish_and_starts_no_other() -> None:
    release = asyncio.Event()
    started: list[int] = []
    finished: list[int] = []

    async def invoke(event: dict[str, Any]) -> None:
        started.append(1)
        await release.wait()
        finished.append(1)

    schedule = Schedule("SweeperFunction.Sweep", invoke, 0.001, rule_arn=RULE)
    schedule.start()
    await until(lambda: started)
    stopping = asyncio.create_task(schedule.stop())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not stopping.done()  # waits for the sweep's writes

    release.set()
    await stopping

    assert (len(started), len(finished)) == (1, 1)
    await asyncio.sleep(0.01)
    assert len(started) == 1


async def test_a_failed_run_is_not_retried_and_the_next_one_comes() -> None:
    calls: list[int] = []

    async def invoke(event: dict[str, Any]) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the function failed")
        return "ok"

    schedule = Schedule("SweeperFunction.Sweep", invoke, 0.001, rule_arn=RULE)
    schedule.start()
    await until(lambda: len(calls) >= 2)
    await schedule.stop()

    assert schedule.failures == 1
    assert schedule.last_result == "ok"


async def test_a_schedule_that_never_ticks_still_runs_on_demand() -> None:
    calls: list[int] = []

    async def invoke(event: dict[str, Any]) -> int:
        calls.append(1)
        return len(calls)

    schedule = Schedule("SweeperFunction.Sweep", invoke, math.inf, rule_arn=RULE)
    schedule.start()

    seen: list[int] = []
    schedule.on_result = seen.append  # what a chaos run counts the sweeps' outcomes with

    assert await schedule.run_now() == 1
    assert await schedule.run_now() == 2
    await schedule.stop()
    assert len(calls) == 2
    assert seen == [1, 2]
