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
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bench.fixtures import QUESTION, SEED, SHORT, serving
from bench.jobs import Job, _seconds, run_one
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


async def main() -> int:
    """Run a cold job, then trace a warm one."""
    latencies = SHORT if os.environ.get("TRACE_SHORT") else SEED
    recorder = Recorder()
    with serving(latencies) as servers:
        async with (
            LocalStack(replace(servers.stack_options(), client_hook=recorder.install)) as stack,
            httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api,
        ):
            tag = secrets.token_hex(4)
            await run_one(api, f"{QUESTION} ({tag})", servers.sources(tag))  # cold
            recorder.calls.clear()
            tag = secrets.token_hex(4)
            job = await run_one(api, f"{QUESTION} ({tag})", servers.sources(tag))
            await asyncio.sleep(0.5)
            recording = list(recorder.calls)
    print(report(job, [c for c in recording if c.start >= job.submitted_at - 0.01]))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
