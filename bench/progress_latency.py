"""How soon a client sees progress: `python -m bench.progress_latency [JOBS]`.

Runs JOBS jobs (default 10) of five sample pages, one after another, on a local stack, and
follows each over server-sent events from the moment `POST /jobs` returns. Prints, per job and
as medians, when the first event, the first pipeline event (`retrieval_started`) and
`report_ready` arrived, and how late events reach the client after their writer stamped them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from brief_cli.client import BriefClient
from brief_local.stack import StackOptions, running_stack
from brief_testing.pages import SAMPLES, PageServer


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jobs", nargs="?", type=int, default=10)
    args = parser.parse_args(argv)
    question = (SAMPLES / "question.txt").read_text().strip()
    rows: list[dict[str, float]] = []
    lags: list[float] = []
    pages = PageServer().start()
    try:
        options = StackOptions(environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"})
        with running_stack(options) as stack, BriefClient(stack.api_url) as client:
            for n in range(args.jobs):
                job = client.submit(question, pages.pages()[:5])
                started = time.perf_counter()  # POST /jobs has returned
                seen: dict[str, float] = {}
                for event in client.events(job["job_id"]):
                    seen.setdefault(event.kind, time.perf_counter() - started)
                    stamped = datetime.fromisoformat(event.data["at"])
                    lags.append((datetime.now(UTC) - stamped).total_seconds())
                rows.append(seen)
                print(
                    f"job {n + 1:2d}: first event {min(seen.values()) * 1000:6.0f} ms, "
                    f"retrieval_started {seen['retrieval_started'] * 1000:6.0f} ms, "
                    f"report_ready {seen['report_ready'] * 1000:6.0f} ms"
                )
    finally:
        pages.stop()
    first = statistics.median(min(r.values()) for r in rows)
    pipeline = statistics.median(r["retrieval_started"] for r in rows)
    ready = statistics.median(r["report_ready"] for r in rows)
    print(
        f"median of {len(rows)} jobs: first event {first * 1000:.0f} ms, "
        f"first pipeline event {pipeline * 1000:.0f} ms, report_ready {ready * 1000:.0f} ms; "
        f"event delivery lag median {statistics.median(lags) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
