"""`brief demo`: one research job on the local stack, offline, followed live.

Serves the bundled sample pages on loopback, submits a job with five of them through the
HTTP API (exactly as a user would), prints each progress event as it happens, then the
cited report and how long each stage took.

`--deep` starts a depth-2, breadth-2 job from two of the pages instead: its follow-up
questions are web searches, answered by a SearXNG-compatible service on loopback that
indexes every sample page, so the second level finds the pages the job did not start from.
The tree of questions is printed before the report.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from brief_cli.cli import tree_lines
from brief_local.stack import LocalStack, StackOptions
from brief_testing.fake_services import FakeServices
from brief_testing.pages import SAMPLES, PageServer

TERMINAL = {"report_ready", "job_failed", "job_cancelled"}
DOCUMENTS = Path(__file__).parent / "documents"
DEEP_START = ("01-when-a-colony-splits.html", "05-stop-signals-and-deadlocks.txt")
"""The pages a `--deep` demo starts from. Each follow-up's search carries the question's
first words ("honeybees decide build new"), and the fake search ranks pages by how many of a
query's words they share: these two pages share the most, so they top every search, and a
follow-up reads only its third result (the top 3 are read; a page read before is not read
again). Started from them, each follow-up finds a page of its own (the waggle-dance debate
and the quorum); started from any other two, the two searches find a new page in common
(01 or 05: read once, it answers both questions)."""


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


async def upload(client: httpx.AsyncClient, path: Path, content_type: str) -> str:
    """Upload a document the way a user would: a grant from the API, a form POST to S3."""
    answer = await client.post(
        "/uploads", json={"filename": path.name, "content_type": content_type}
    )
    grant = answer.raise_for_status().json()
    body = await asyncio.to_thread(path.read_bytes)
    async with httpx.AsyncClient(timeout=30) as s3:
        posted = await s3.post(
            grant["url"], data=grant["fields"], files={"file": (path.name, body)}
        )
        posted.raise_for_status()
    uri: str = grant["uri"]
    return uri


async def run_demo(
    out: TextIO = sys.stdout, *, every_kind: bool = False, deep: bool = False
) -> int:
    """Run the demo; 0 when the report was written.

    With `every_kind`, the job mixes every kind of source: web pages, a web search (a
    SearXNG-compatible service on loopback), a vector search (Qdrant-compatible, on
    loopback) and a PDF uploaded through the API. With `deep`, it is a depth-2, breadth-2
    job from two pages (`DEEP_START`) whose follow-up questions search the same service.
    """
    if every_kind and deep:
        raise ValueError("the demo runs either every kind of source or a deep job, not both")
    question = (SAMPLES / "question.txt").read_text().strip()
    pages = PageServer(SAMPLES).start()
    services = FakeServices(pages.url).start()
    env = {"BRIEF_ALLOWED_HOSTS": "127.0.0.1"}
    if every_kind or deep:
        env |= {"BRIEF_SEARCH_PROVIDER": "searxng", "BRIEF_SEARXNG_URL": services.url}
    if every_kind:
        env |= {
            "BRIEF_VECTOR_KIND": "qdrant",
            "BRIEF_VECTOR_URL": services.url,
            "BRIEF_QDRANT_MODEL": "brief/hashed-words",
        }
    try:
        out.write("Starting the local stack (moto on loopback, functions from template.yaml)...\n")
        async with LocalStack(StackOptions(environment=env)) as stack:
            out.write(f"API at {stack.api_url}; sample pages at {pages.url}\n\n")
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
                sources: list[object] = list(pages.pages()[:5])
                body: dict[str, Any] = {"question": question}
                if every_kind:
                    pdf = await upload(client, DOCUMENTS / "bait-hives.pdf", "application/pdf")
                    sources = [
                        *sources[:2],
                        {"search": "scout bees waggle dance debate", "limit": 2},
                        {
                            "vector": "quorum of scouts at the nest site",
                            "collection": "samples",
                            "top_k": 2,
                        },
                        pdf,
                    ]
                if deep:
                    sources = [f"{pages.url}/{name}" for name in DEEP_START]
                    body |= {"depth": 2, "breadth": 2}
                    out.write(
                        "Deep research: depth 2, breadth 2. Level 1 reads the two pages below; "
                        "each follow-up question is a web search over the sample pages "
                        f"(a SearXNG-compatible service at {services.url}).\n"
                    )
                out.write(f"Question: {question}\nSources:\n")
                out.writelines(f"  - {json.dumps(s)}\n" for s in sources)
                created = await client.post("/jobs", json={**body, "sources": sources})
                created.raise_for_status()
                job_id = created.json()["job_id"]
                out.write(f"\nJob {job_id} accepted ({created.status_code}); progress:\n")
                outcome = await follow(client, job_id, out)
                view = (await client.get(f"/jobs/{job_id}")).json()
                if outcome != "report_ready":
                    out.write(f"\nThe job failed: {view.get('reason')}\n")
                    return 1
                if deep:
                    out.write("\n" + format_tree(view.get("tree") or []))
                report = await client.get(
                    f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"}
                )
                out.write("\n" + "─" * 78 + "\n" + report.text + "─" * 78 + "\n")
                out.write(format_timings(view["timings"]))
                out.write(format_sources(view["sources"]))
                out.write(
                    f"\nThe report is at s3://{stack.bucket}/jobs/{job_id}/report.md in the local "
                    "stack, which keeps its state in memory: it ends with this command (`brief "
                    "local --data-dir DIR` keeps a stack's bucket across restarts).\n"
                )
                return 0
    finally:
        services.stop()
        pages.stop()


def format_tree(tree: list[dict[str, Any]]) -> str:
    """A deep job's questions, indented by level, each with the numbers of the sources that
    answered it (as the report numbers them)."""
    header = "Questions followed (level, question, the sources that answered it):"
    return "\n".join([header, *tree_lines(tree, "(nothing new found)")]) + "\n"


def format_sources(sources: list[dict[str, Any]]) -> str:
    """Each source's outcome: its kind, state, size and how long it took."""
    lines = ["Sources:"]
    for s in sources:
        outcome = s["state"] if s["state"] in ("ok", "cached") else f"{s['state']}: {s['reason']}"
        via = f" via {s['via']}" if s.get("via") else ""
        lines.append(
            f"  [{s['index'] + 1}] {s['kind']:<8} {outcome:<8} {s['chars']:>6} chars "
            f"{s['fetch_ms']:>5} ms  {s['url']}{via}"
        )
    return "\n".join(lines) + "\n"


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
