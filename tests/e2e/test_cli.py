"""The `brief` command line against the local stack, run as a person runs it: a process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import docx
import httpx
import pypdfium2  # type: ignore[import-untyped]
import pytest

from brief_local.stack import LocalStack
from brief_testing.pages import SAMPLES, PageServer

from .conftest import wait_for

QUESTION = (SAMPLES / "question.txt").read_text().strip()
PROGRESS = re.compile(r"^\s+\d+\.\d\ds  [a-z_]+", re.M)


def brief(
    *args: str, api: str | None = None, timeout_s: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run `brief ARGS...` with this interpreter; `api` goes in $BRIEF_API."""
    env = {k: v for k, v in os.environ.items() if k not in ("BRIEF_API", "BRIEF_API_KEY")}
    if api is not None:
        env["BRIEF_API"] = api
    return subprocess.run(  # noqa: S603 - this interpreter running our own CLI
        [sys.executable, "-m", "brief_cli.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_research_shows_each_event_as_it_happens_then_the_cited_report(
    stack: LocalStack, pages: PageServer
) -> None:
    sources = pages.pages()[:3]

    done = brief("research", QUESTION, *sources, "--api", stack.api_url)

    assert done.returncode == 0, done.stderr
    progress = done.stderr
    assert re.search(r"^Job [0-9a-f]{32} accepted", progress, re.M)
    kinds = [line.split()[1] for line in PROGRESS.findall(progress)]
    assert kinds[0] == "job_created"
    assert kinds[-1] == "report_ready"
    assert kinds.count("source_fetched") == kinds.count("summary_done") == 3
    times = [float(t) for t in re.findall(r"^\s+(\d+\.\d\d)s ", progress, re.M)]
    assert times == sorted(times)
    assert re.search(r"^Report ready after \d+\.\d\d s: 3 of 3 sources used\.$", progress, re.M)
    report = done.stdout
    assert report.startswith(f"# {QUESTION}\n")
    for n, url in enumerate(sources, start=1):
        assert f"[{n}]" in report
        assert f"]({url})" in report


def test_research_of_sources_that_all_fail_says_why_and_exits_non_zero(
    stack: LocalStack, pages: PageServer
) -> None:
    done = brief("research", QUESTION, f"{pages.url}/status/404", api=stack.api_url)

    assert done.returncode == 1
    assert "job_failed" in done.stderr
    assert re.search(r"^Job failed after .*no source could be used.*404", done.stderr, re.M)
    assert done.stdout == ""


def test_status_report_and_jobs_show_a_finished_job(
    stack: LocalStack, pages: PageServer, api: httpx.Client, tmp_path: Path
) -> None:
    sources = pages.pages()[:2]
    job_id = api.post("/jobs", json={"question": QUESTION, "sources": sources}).json()["job_id"]
    wait_for(api, job_id)

    status = brief("status", job_id, api=stack.api_url)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"Job {job_id}: done\nQuestion: {QUESTION}\n")
    # Earlier tests fetched the same sample pages: a revalidated page shows as "cached".
    assert re.search(rf"\[1\] (ok|cached)\s+{re.escape(sources[0])}", status.stdout), status.stdout
    assert re.search(r"^Timings: queued \d+ ms", status.stdout, re.M)

    out = tmp_path / "report.md"
    report = brief("report", job_id, "-o", str(out), api=stack.api_url)
    assert report.returncode == 0, report.stderr
    assert (
        out.read_text()
        == api.get(f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"}).text
    )
    as_json = brief("report", job_id, "--json", api=stack.api_url)
    assert [c["url"] for c in json.loads(as_json.stdout)["citations"]] == sources
    # -o picks the format by the file's extension; each is opened by its own library.
    for name in ("report.pdf", "report.docx", "report.html"):
        written = brief("report", job_id, "-o", str(tmp_path / name), api=stack.api_url)
        assert written.returncode == 0, written.stderr
    pdf = pypdfium2.PdfDocument(tmp_path / "report.pdf")
    assert "honeybees" in pdf[0].get_textpage().get_text_range()
    assert docx.Document(str(tmp_path / "report.docx")).paragraphs[0].text == QUESTION
    assert f'<a href="{sources[0]}">[1]</a>' in (tmp_path / "report.html").read_text()

    jobs = brief("jobs", api=stack.api_url)
    assert jobs.returncode == 0, jobs.stderr
    line = next(row for row in jobs.stdout.splitlines() if row.startswith(job_id))
    assert "done" in line
    assert QUESTION[:40] in line

    again = brief("cancel", job_id, api=stack.api_url)
    assert again.returncode == 1
    assert "already ended" in again.stderr


def test_cancel_stops_a_running_job(
    stack: LocalStack, pages: PageServer, api: httpx.Client
) -> None:
    # Slower than any busy machine's `brief cancel`: the job is still fetching when it lands
    # (a cancelled job's fetch in flight stops within a second, so the test does not wait it).
    slow = f"{pages.url}/bytes/100?delay=30"
    job_id = api.post("/jobs", json={"question": QUESTION, "sources": [slow]}).json()["job_id"]

    done = brief("cancel", job_id, api=stack.api_url)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Job {job_id} is cancelled.\n"
    assert api.get(f"/jobs/{job_id}").json()["state"] == "cancelled"


def test_batch_writes_one_report_per_job_and_exits_non_zero_when_one_failed(
    stack: LocalStack, pages: PageServer, tmp_path: Path
) -> None:
    urls = pages.pages()
    requests: list[dict[str, Any]] = [
        {"question": QUESTION, "sources": urls[:2]},
        {"question": "What is a waggle dance for?", "sources": urls[2:4]},
        {"question": "Does this page exist at all?", "sources": [f"{pages.url}/status/500"]},
    ]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        "\n".join(json.dumps(r) for r in requests[:2]) + "\n\n" + json.dumps(requests[2])
    )
    out = tmp_path / "reports"

    done = brief("batch", str(batch), "--out", str(out), api=stack.api_url, timeout_s=120)

    assert done.returncode == 1, done.stderr
    assert re.search(r"^Batch [0-9a-f]{32}: 3 jobs accepted\.$", done.stderr, re.M)
    assert "done 2 · failed 1 · running 0 · pending 0 (of 3)" in done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert [re.sub(r"-[0-9a-f]{32}\.md$", "", name) for name in written] == ["1", "2"]
    first = (out / written[0]).read_text()
    assert first.startswith(f"# {QUESTION}\n")
    assert "[1]" in first
    assert (out / written[1]).read_text().startswith("# What is a waggle dance for?\n")
    assert re.search(
        r"^  job 3 \([0-9a-f]{32}\) failed: no source could be used", done.stderr, re.M
    )


def test_batch_names_the_line_of_a_request_the_api_refuses(
    stack: LocalStack, tmp_path: Path
) -> None:
    batch = tmp_path / "jobs.jsonl"
    good = {"question": "Why is the sky blue?", "sources": ["https://example.org/"]}
    bad = {"question": "Is this one fine?", "sources": []}
    batch.write_text(f"{json.dumps(good)}\n\n{json.dumps(bad)}\n")

    done = brief("batch", str(batch), api=stack.api_url)

    assert done.returncode == 1
    assert f"{batch}:3: sources: List should have at least 1 item" in done.stderr


@pytest.mark.parametrize(
    "args", [("research", QUESTION, "https://example.org/"), ("status", "0" * 32), ("jobs",)]
)
def test_with_no_server_the_cli_says_how_to_start_one(args: tuple[str, ...]) -> None:
    api = f"http://127.0.0.1:{free_port()}"

    done = brief(*args, api=api)

    assert done.returncode == 1
    assert done.stderr == (
        f"brief: nothing is listening at {api}: start the local stack with `brief local` "
        "or pass --api URL (or set BRIEF_API)\n"
    )
