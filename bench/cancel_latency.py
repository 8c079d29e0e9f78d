"""How soon a cancel takes effect: `python -m bench.cancel_latency [JOBS]`.

Runs JOBS jobs (default 5) of each kind on a local stack: one whose only page takes 30 s to
answer (cancelled while it is fetched), and one whose model takes 30 s to answer (cancelled
while its summary is written). From the moment `POST /jobs/{id}/cancel` is sent, it prints
when the cancel answered, when `job_cancelled` reached a client following the job's
server-sent events, and when the stage's SQS record was acknowledged (its invocation had
stopped the slow work and ended), per job and as medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import boto3

from brief_cli.client import BriefClient
from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer
from brief_testing.pages import SAMPLES, serving

SLOW_S = 30


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jobs", nargs="?", type=int, default=5)
    args = parser.parse_args(argv)
    question = (SAMPLES / "question.txt").read_text().strip()
    rows: dict[str, list[tuple[float, float, float]]] = {"page": [], "model": []}
    with serving() as pages, FakeModelServer(latency_s=SLOW_S) as models:
        stage = {
            "provider": "openai",
            "model": "fake-slow",
            "base_url": f"{models.url}/v1",
            "api_key": "sk-local",
            "timeout_s": SLOW_S * 2,
            "attempts": 1,
        }
        options = StackOptions(
            environment={
                "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
                "BRIEF_FETCH_TIMEOUT_S": str(SLOW_S * 2),
                "BRIEF_FETCH_READ_TIMEOUT_S": str(SLOW_S * 2),
                "BRIEF_RETRIEVAL_DEADLINE_S": str(SLOW_S * 2),
                "BRIEF_SUMMARIZE_MODEL": json.dumps(stage),
            }
        )
        with running_stack(options) as stack, BriefClient(stack.api_url) as client:
            moto = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # any key
            sqs = boto3.client("sqs", endpoint_url=stack.endpoint, region_name="us-east-1", **moto)
            for n in range(args.jobs):
                slow_page = f"{pages.url}/bytes/100?delay={SLOW_S}"
                job = client.submit(question, [slow_page])["job_id"]
                _wait_for(lambda: _in_flight(sqs, stack, "IntakeQueue") == 1)
                rows["page"].append(_cancel(client, sqs, stack, job, "IntakeQueue"))
                asked = models.stats.requests + 1
                job = client.submit(question, pages.pages()[n % 5 : n % 5 + 1])["job_id"]
                _wait_for(lambda asked=asked: models.stats.requests >= asked)
                rows["model"].append(_cancel(client, sqs, stack, job, "SummarizeQueue"))
                for kind in ("page", "model"):
                    answered, event, acked = rows[kind][-1]
                    print(
                        f"job {n + 1} (slow {kind:5}): cancel answered {answered * 1000:4.0f} ms, "
                        f"job_cancelled streamed {event * 1000:4.0f} ms, "
                        f"record acknowledged {acked * 1000:4.0f} ms"
                    )
    for kind, measured in rows.items():
        answered, event, acked = (
            statistics.median(column) for column in zip(*measured, strict=True)
        )
        worst = max(m[2] for m in measured)
        print(
            f"slow {kind}, median of {len(measured)}: answered {answered * 1000:.0f} ms, "
            f"job_cancelled streamed {event * 1000:.0f} ms, record acknowledged "
            f"{acked * 1000:.0f} ms (slowest {worst * 1000:.0f} ms; the work would take {SLOW_S} s)"
        )
    return 0


def _cancel(
    client: BriefClient, sqs: Any, stack: LocalStack, job_id: str, queue: str
) -> tuple[float, float, float]:
    """Cancel; seconds until the answer, the streamed `job_cancelled`, and the record's ack."""
    acked: list[float] = []
    started = time.perf_counter()

    def watch_queue() -> None:
        _wait_for(lambda: _in_flight(sqs, stack, queue) == 0)
        acked.append(time.perf_counter() - started)

    watcher = threading.Thread(target=watch_queue)
    watcher.start()
    client.cancel(job_id)
    answered = time.perf_counter() - started
    for event in client.events(job_id):  # ends after the job's terminal event
        if event.kind == "job_cancelled":
            break
    streamed = time.perf_counter() - started
    watcher.join()
    return answered, streamed, acked[0]


def _in_flight(sqs: Any, stack: LocalStack, queue: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.queue_urls[queue], AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _wait_for(condition: Any, timeout_s: float = SLOW_S * 2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the local stack did not get there in time")
        time.sleep(0.01)


if __name__ == "__main__":
    raise SystemExit(main())
