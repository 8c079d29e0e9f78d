"""A function container in a process of its own, as Lambda runs one: JSON in and out, warm
state kept between invocations, errors and timeouts as Lambda reports them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from brief_local.functions import FunctionError, FunctionPool, ProcessContainer
from brief_local.template import FunctionSpec

APP = """
import os
import sys
import time

from brief.runtime import Container


class Runtime(Container):
    def close(self):
        print("closed", file=sys.stderr)


container = Runtime()
calls = 0


def handler(event, context):
    global calls
    calls += 1
    print("a print goes to the log, not to the answer")
    if event.get("fail"):
        raise ValueError("no such source")
    time.sleep(event.get("sleep_s", 0))
    return {
        "calls": calls,
        "function": context.function_name,
        "bucket": container.environment["BRIEF_BUCKET"],
        "freezes": container.freeze_after_cold_start,
        "niceness": os.nice(0),
    }
"""


@pytest.fixture
def spec(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "app.py").write_text(APP)
    return FunctionSpec(
        logical_id="ProbeFunction",
        code_uri=tmp_path,
        handler="app.handler",
        module="app",
        attribute="handler",
        timeout=2,
        memory=128,
        runtime="python3.12",
        environment={},
    )


@pytest.fixture
async def container(spec: FunctionSpec) -> AsyncIterator[ProcessContainer]:
    started = await ProcessContainer(spec, {"BRIEF_BUCKET": "brief-data"}).start()
    yield started
    await started.aclose()


async def test_a_warm_process_keeps_its_state_and_answers_in_json(
    container: ProcessContainer,
) -> None:
    first = await container.invoke({})
    second = await container.invoke({})

    assert first == {
        "calls": 1,
        "function": "ProbeFunction",
        "bucket": "brief-data",
        "freezes": True,
        "niceness": 10,  # the functions yield the CPU to the stack's loop
    }
    assert second["calls"] == 2


async def test_a_handler_error_fails_the_invocation_not_the_container(
    container: ProcessContainer,
) -> None:
    with pytest.raises(FunctionError, match="ValueError: no such source"):
        await container.invoke({"fail": True})

    assert (await container.invoke({}))["calls"] == 2
    assert not container.broken


async def test_a_timeout_kills_the_process(container: ProcessContainer) -> None:
    with pytest.raises(TimeoutError):
        await container.invoke({"sleep_s": 30})

    assert container.broken
    with pytest.raises(FunctionError):
        await container.invoke({})


async def test_a_pool_of_processes_runs_them_at_once_and_ends_them(spec: FunctionSpec) -> None:
    pool = FunctionPool(spec, concurrency=2, environment={"BRIEF_BUCKET": "b"}, processes=True)
    try:
        answers = await asyncio.gather(*(pool.invoke({"sleep_s": 0.5}) for _ in range(4)))
    finally:
        await pool.close()

    assert sorted(a["calls"] for a in answers) == [1, 1, 2, 2]  # two processes, each used twice


def test_a_client_hook_cannot_reach_containers_in_processes_of_their_own(
    spec: FunctionSpec,
) -> None:
    with pytest.raises(ValueError, match="only on threads"):
        FunctionPool(spec, 1, processes=True, client_hook=lambda service, client: None)
