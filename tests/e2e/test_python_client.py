"""The Python client (`brief_client`) against the local stack: the README's example as it is
written, the async client, and the errors a caller can catch."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brief_client import (
    AsyncBrief,
    Brief,
    Conflict,
    Invalid,
    JobFailed,
    NotFound,
    StreamedEvent,
)
from brief_local.stack import LocalStack
from brief_testing.pages import PageServer

from .test_local_stack import QUESTION

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_runs_as_written(stack: LocalStack, pages: PageServer) -> None:
    block = re.search(r"## From Python\n```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 10
    code = code.replace("http://127.0.0.1:8000", stack.api_url)
    code = code.replace("http://127.0.0.1:9000", pages.url)

    run = subprocess.run(  # noqa: S603 - our own interpreter running the README's code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert run.returncode == 0, run.stderr
    kinds = run.stdout.split("# How do honeybees pick a nest site?")[0].split()
    assert kinds[0] == "job_created"
    assert kinds[-1] == "report_ready"
    assert "## Sources" in run.stdout


def test_the_async_client_follows_a_job_and_reads_its_report(
    stack: LocalStack, pages: PageServer
) -> None:
    async def main() -> tuple[list[StreamedEvent], str, str]:
        async with AsyncBrief(stack.api_url) as brief:
            job_id = await brief.submit(QUESTION, pages.pages()[:2])
            seen = [event async for event in brief.events(job_id)]
            view = await brief.status(job_id)
            report = await brief.report(job_id)
            return seen, view.state, report.markdown

    seen, state, markdown = asyncio.run(main())

    assert seen[-1].kind == "report_ready"
    assert state == "done"
    assert markdown.startswith(f"# {QUESTION}")


def test_events_resume_after_a_cursor_without_repeating_one(
    stack: LocalStack, pages: PageServer
) -> None:
    with Brief(stack.api_url) as brief:
        job_id = brief.submit(QUESTION, pages.pages()[:1])
        first = [e for e in brief.events(job_id)]
        middle = first[len(first) // 2]
        rest = list(brief.events(job_id, after=middle.cursor))

    assert [e.cursor for e in rest] == [e.cursor for e in first[len(first) // 2 + 1 :]]


def test_errors_are_typed_and_carry_the_problem_detail(
    stack: LocalStack, pages: PageServer
) -> None:
    with Brief(stack.api_url) as brief:
        with pytest.raises(NotFound, match="no job with that id"):
            brief.status("0" * 32)
        with pytest.raises(Invalid) as invalid:
            brief.submit("Why?", [])
        assert invalid.value.status == 422
        assert {e["field"] for e in invalid.value.errors} >= {"sources"}
        report = brief.research(QUESTION, pages.pages()[:1])
        with pytest.raises(Conflict, match="already ended"):
            brief.cancel(report.job_id)


def test_research_says_why_a_job_failed(stack: LocalStack, pages: PageServer) -> None:
    with Brief(stack.api_url) as brief, pytest.raises(JobFailed) as failed:
        brief.research(QUESTION, [f"{pages.url}/status/404"])

    assert "404" in failed.value.reason
    assert failed.value.job_id
