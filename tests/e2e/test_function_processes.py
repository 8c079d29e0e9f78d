"""The local stack with every function container in a process of its own (the benchmark's
scale runs): a job goes through every stage, and the schedules run there too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.faults import FaultInjector, FaultPlan
from brief_testing.pages import PageServer

from .conftest import events_until, wait_for


@pytest.fixture(scope="module")
def processes_stack() -> Iterator[LocalStack]:
    options = StackOptions(
        function_processes=True,
        environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"},
        retry_after_s=0,
        schedule_every_s=float("inf"),
    )
    with running_stack(options) as running:
        yield running


def test_a_job_runs_through_function_processes(
    processes_stack: LocalStack, pages: PageServer
) -> None:
    sources = pages.pages()[:5]
    with httpx.Client(base_url=processes_stack.api_url, timeout=30) as api:
        job = api.post("/jobs", json={"question": "What do they say?", "sources": sources})
        job_id = job.raise_for_status().json()["job_id"]
        view = wait_for(api, job_id, timeout_s=90)  # each container's interpreter starts cold
        report = api.get(f"/jobs/{job_id}/report").raise_for_status().json()
        kinds = events_until(api, job_id, "report_ready")

    assert view["state"] == "done", view
    assert [c["url"] for c in report["citations"]] == sources
    assert kinds.count("summary_done") == 5


def test_a_schedule_runs_in_a_process_and_answers(processes_stack: LocalStack) -> None:
    (report,) = processes_stack.run_schedules_from_thread()
    assert set(report) >= {"open", "checked", "failed", "closed", "errors"}


async def test_faults_need_containers_on_threads() -> None:
    options = StackOptions(function_processes=True, faults=FaultInjector(FaultPlan()))
    with pytest.raises(ValueError, match="threads"):
        async with LocalStack(options):
            pass
