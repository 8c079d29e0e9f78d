"""`brief demo`: one research job on the local stack, offline, followed live.

Serves the bundled sample pages on loopback, submits a job with five of them through the
HTTP API (exactly as a user would), prints each progress event as it happens, then the
cited report and how long each stage took.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, TextIO

import httpx

from brief_local.pages import SAMPLES, PageServer
from brief_local.stack import LocalStack, StackOptions

TERMINAL = {"report_ready", "job_failed"}


async def follow(
    client: httpx.AsyncClient, job_id: str, out: TextIO, *, timeout_s: float = 120.0
) -> str:
    """Print the job's events as they arrive; return the last one's kind."""
    cursor: str | None = None
    started = time.perf_counter()
    last = ""
    while time.perf_counter() - started < timeout_s:
        params = {"after": cursor} if cursor else {}
        page = (await client.get(f"/jobs/{job_id}/events", params=params)).raise_for_status()
        body: dict[str, Any] = page.json()
        for event in body["events"]:
            last = event["kind"]
            where = f" [{event['index'] + 1}]" if event.get("index") is not None else ""
            detail = f" — {event['detail']}" if event.get("detail") else ""
            out.write(f"  {time.perf_counter() - started:6.2f}s  {last}{where}{detail}\n")
            out.flush()
        cursor = body["cursor"]
        if last in TERMINAL:
            return last
        await asyncio.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish within {timeout_s:g} s")


async def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when the report was written."""
    question = (SAMPLES / "question.txt").read_text().strip()
    pages = PageServer(SAMPLES).start()
    options = StackOptions(environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"})
    try:
        out.write("Starting the local stack (moto on loopback, functions from template.yaml)...\n")
        async with LocalStack(options) as stack:
            sources = pages.pages()[:5]
            out.write(f"API at {stack.api_url}; sample pages at {pages.url}\n\n")
            out.write(f"Question: {question}\nSources:\n")
            out.writelines(f"  [{i}] {url}\n" for i, url in enumerate(sources, start=1))
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
                created = await client.post(
                    "/jobs", json={"question": question, "sources": sources}
                )
                created.raise_for_status()
                job_id = created.json()["job_id"]
                out.write(f"\nJob {job_id} accepted ({created.status_code}); progress:\n")
                outcome = await follow(client, job_id, out)
                view = (await client.get(f"/jobs/{job_id}")).json()
                if outcome != "report_ready":
                    out.write(f"\nThe job failed: {view.get('reason')}\n")
                    return 1
                report = await client.get(
                    f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"}
                )
                out.write("\n" + "─" * 78 + "\n" + report.text + "─" * 78 + "\n")
                out.write(format_timings(view["timings"]))
                out.write(f"\nReport stored at s3://{stack.bucket}/jobs/{job_id}/report.md\n")
                return 0
    finally:
        pages.stop()


def format_timings(timings: dict[str, int | None]) -> str:
    """The stage timings as a small table."""
    rows = [
        ("queued (API → research)", timings.get("queued_ms")),
        ("retrieval (all sources at once)", timings.get("retrieval_ms")),
        ("summarize (all sources at once)", timings.get("summarize_ms")),
        ("combine (incl. queue hop)", timings.get("combine_ms")),
        ("total", timings.get("total_ms")),
    ]
    lines = ["Stage timings:"]
    lines += [f"  {name:<34} {'—' if ms is None else f'{ms:>6} ms'}" for name, ms in rows]
    return "\n".join(lines) + "\n"
