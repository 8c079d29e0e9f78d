"""Every S3 and SQS call of one job, in time order: where the seed job's overhead goes.

`python -m bench.trace` runs a warm seed job (5 sources; 1.0 / 3.0 / 2.0 s) through the local
stack, records each call a function's client makes (thread, operation, start, end; seconds
since the POST) with a botocore hook, and prints them with the job's events between, so a
reader sees which rounds sit between the fake latencies. `TRACE_SHORT=1` uses the short
latencies of the scale scenario.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bench.fixtures import QUESTION, SEED, SHORT, Servers, serving
from bench.jobs import Job, _read_events, _seconds, run_one
from brief_local.stack import LocalStack


@dataclass
class Call:
    """One attempt of one S3 or SQS call."""

    thread: str
    operation: str
    detail: str
    start: float
    end: float | None = None


class Recorder:
    """A client hook (`StackOptions.client_hook`) that times every attempt of every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._open: dict[str, Call] = {}
        self._lock = threading.Lock()

    def install(self, service: str, client: Any) -> None:
        """Time this client's calls."""
        client.meta.events.register(f"before-send.{service}", self._sent)
        client.meta.events.register(f"needs-retry.{service}", self._answered)

    def _sent(self, request: Any, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        path = request.url.split("?", 1)[0].split("/", 4)[-1] if request.url else ""
        call = Call(threading.current_thread().name, operation, path, time.time())
        key = f"{request.headers.get('amz-sdk-invocation-id')}"
        with self._lock:
            self._open[key] = call
            self.calls.append(call)

    def _answered(self, request_dict: Any = None, **_: Any) -> None:
        headers = (request_dict or {}).get("headers", {})
        with self._lock:
            call = self._open.pop(f"{headers.get('amz-sdk-invocation-id')}", None)
        if call is not None and call.end is None:
            call.end = time.time()


def _label(thread: str) -> str:
    return thread.split("-", 1)[0] if thread else "?"


def report(job: Job, calls: list[Call]) -> str:
    """The calls and events of one job, by start time, relative to its POST."""
    rows: list[tuple[float, str]] = []
    t0 = job.submitted_at
    for c in calls:
        took = f"{(c.end - c.start) * 1000:6.1f} ms" if c.end else "      ? ms"
        rows.append(
            (
                c.start - t0,
                f"{c.start - t0:7.3f}  {took}  {_label(c.thread):<22} {c.operation:<24} {c.detail}",
            )
        )
    for e in job.events:
        at = _seconds(e["at"]) - t0
        rows.append((at, f"{at:7.3f}  ---- event {e['kind']} {e.get('index', '')}"))
    rows.sort(key=lambda r: r[0])
    lines = [r[1] for r in rows]
    by_thread: dict[str, int] = {}
    for c in calls:
        by_thread[_label(c.thread)] = by_thread.get(_label(c.thread), 0) + 1
    counts = ", ".join(f"{k} {v}" for k, v in sorted(by_thread.items()))
    lines.append(f"{len(calls)} calls: {counts}")
    lines.append(f"report_ready at {job.duration_s or float('nan'):.3f} s")
    return "\n".join(lines)


@asynccontextmanager
async def _traced(
    servers: Servers,
) -> AsyncIterator[tuple[Recorder, LocalStack, httpx.AsyncClient]]:
    """A local stack whose functions' calls are recorded, after a first (cold) job whose
    calls are not."""
    recorder = Recorder()
    async with (
        LocalStack(replace(servers.stack_options(), client_hook=recorder.install)) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api,
    ):
        tag = secrets.token_hex(4)
        await run_one(api, f"{QUESTION} ({tag})", servers.sources(tag))
        await asyncio.sleep(0.5)  # the cold job's last writes land
        recorder.calls.clear()
        yield recorder, stack, api


def stage_of(thread: str) -> str:
    """The stage a call was made for, by its thread (the API's calls run on the stack's)."""
    name = thread.split("_", 1)[0].removesuffix("Function").lower()
    return name if name in ("research", "summarize", "combine") else "api"


async def count_calls() -> dict[str, Any]:
    """The S3 and SQS calls of one warm seed job, per stage, and how many of them were the
    cancel watch's reads of the marker (besides each delivery's one read): a job is waited
    for in S3 directly, so no status poll is counted."""
    with serving(SEED) as servers:
        async with _traced(servers) as (recorder, stack, api):
            tag = secrets.token_hex(4)
            body = {"question": f"{QUESTION} ({tag})", "sources": servers.sources(tag)}
            posted = time.perf_counter()
            job_id = (await api.post("/jobs", json=body)).raise_for_status().json()["job_id"]
            post_s = time.perf_counter() - posted
            api_calls = list(recorder.calls)
            await until_reported(stack, job_id)
            await asyncio.sleep(1.0)  # the writes beside the report land
            calls = [c for c in recorder.calls if stage_of(c.thread) != "api"] + api_calls
            job = Job(job_id, time.time())
            await _read_events(api, job, asyncio.Semaphore(1))
            usage = (await api.get(f"/jobs/{job_id}/report")).raise_for_status().json()["usage"]
    by_stage: dict[str, int] = {}
    by_operation: dict[str, int] = {}
    for c in calls:
        by_stage[stage_of(c.thread)] = by_stage.get(stage_of(c.thread), 0) + 1
        by_operation[c.operation] = by_operation.get(c.operation, 0) + 1
    marker_reads = sum(1 for c in calls if c.detail.endswith("/cancelled.json"))
    sources = len(body["sources"])
    return {
        "by_stage": by_stage,
        "by_operation": by_operation,
        "total": sum(by_stage.values()),
        "cancel_polls": max(0, marker_reads - (sources + 2)),  # each delivery reads it once
        "messages": sources + 2,  # research, a summary per source, combine
        "function_s": {"api": post_s, **_busy_s(job)},
        "model_tokens": [usage.get("input_tokens", 0), usage.get("output_tokens", 0)],
    }


def _busy_s(job: Job) -> dict[str, float]:
    """Each function's time on the job, from its events: retrieval, each summary (from the
    end of retrieval: each billed as if alone, an upper bound), the combine."""

    def at(kind: str, index: int | None = None) -> float:
        times = [
            _seconds(e["at"])
            for e in job.events
            if e["kind"] == kind and (index is None or e.get("index") == index)
        ]
        return max(times)

    retrieved = at("retrieval_done")
    summaries = {e.get("index") for e in job.events if e["kind"] == "summary_done"}
    return {
        "research": retrieved - at("retrieval_started"),
        "summarize": sum(at("summary_done", i) - retrieved for i in summaries),
        "combine": at("report_ready") - at("combine_started"),
    }


async def until_reported(stack: LocalStack, job_id: str, timeout_s: float = 60) -> None:
    """Wait for the job's report_ready event, listing the bucket with a client of its own."""
    import boto3

    moto = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # any key
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1", **moto)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await asyncio.to_thread(
            s3.list_objects_v2, Bucket=stack.bucket, Prefix=f"jobs/{job_id}/events/"
        )
        if any(o["Key"].endswith("-report_ready.json") for o in listed.get("Contents", [])):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"job {job_id} has no report after {timeout_s} s")


async def main() -> int:
    """Run a cold job, then trace a warm one."""
    latencies = SHORT if os.environ.get("TRACE_SHORT") else SEED
    with serving(latencies) as servers:
        async with _traced(servers) as (recorder, _, api):
            tag = secrets.token_hex(4)
            job = await run_one(api, f"{QUESTION} ({tag})", servers.sources(tag))
            await asyncio.sleep(0.5)
            recording = list(recorder.calls)
    print(report(job, [c for c in recording if c.start >= job.submitted_at - 0.01]))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
