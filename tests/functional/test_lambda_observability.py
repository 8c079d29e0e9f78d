"""In Lambda, a handler's lines are Powertools JSON tied to their job, record and request,
and its metrics are CloudWatch EMF, flushed once per invocation.

Runs an SQS handler built by `brief.runtime.sqs_handler` in a fresh interpreter with
Lambda's environment (logging set-up is process-wide, as in a Lambda container), and reads
what it writes to stdout, which is what CloudWatch Logs would receive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

HANDLER = """
import logging
from types import SimpleNamespace

from brief import logs, metrics
from brief.errors import PermanentError
from brief.runtime import Container, sqs_handler

log = logging.getLogger("brief.pipeline")

async def build(wiring, records):
    async def handle(record):
        logs.bind_job(record["body"])
        log.info("working", extra={"index": 1})
        logging.getLogger("botocore.credentials").info("found credentials")
        logging.getLogger("botocore.retries").warning("throttled; retrying")
        metrics.count("JobsStarted")
        metrics.duration("StageDuration", 25.0, stage="summarize")
        if record["body"] == "b" * 32:
            raise PermanentError("no such source")
    return handle

handler = sqs_handler(Container(), build)
records = [{"messageId": "m-a", "body": "a" * 32}, {"messageId": "m-b", "body": "b" * 32}]
for request_id in ("req-1", "req-2"):
    context = SimpleNamespace(aws_request_id=request_id, function_name="brief-summarize")
    print(handler({"Records": records}, context), flush=True)
"""

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "brief-summarize",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "POWERTOOLS_SERVICE_NAME": "brief",
    "POWERTOOLS_METRICS_NAMESPACE": "Brief",
    "LOG_LEVEL": "INFO",
    "BRIEF_BUCKET": "unused",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def written() -> list[Any]:
    """Each stdout line: a parsed JSON object, or the handler's printed response."""
    done = subprocess.run(  # noqa: S603 - this interpreter on a fixed script
        [sys.executable, "-c", HANDLER],
        env=LAMBDA_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr == ""
    out: list[Any] = []
    for line in done.stdout.splitlines():
        out.append(json.loads(line) if line.startswith('{"') else line)
    return out


def logged(written: list[Any], message: str) -> list[dict[str, Any]]:
    return [w for w in written if isinstance(w, dict) and w.get("message") == message]


def emf(written: list[Any]) -> list[dict[str, Any]]:
    return [w for w in written if isinstance(w, dict) and "_aws" in w]


def test_each_line_names_its_job_record_and_request(written: list[Any]) -> None:
    lines = logged(written, "working")
    assert [(w["job_id"], w["message_id"], w["function_request_id"]) for w in lines] == [
        ("a" * 32, "m-a", "req-1"),
        ("b" * 32, "m-b", "req-1"),
        ("a" * 32, "m-a", "req-2"),
        ("b" * 32, "m-b", "req-2"),
    ]
    assert [w["cold_start"] for w in lines] == [True, True, False, False]
    first = lines[0]
    assert first["service"] == "brief"
    assert first["level"] == "INFO"
    assert first["function_name"] == "brief-summarize"
    assert first["index"] == 1
    assert {"location", "timestamp", "xray_trace_id"} - set(first) == {"xray_trace_id"}


def test_a_failed_record_is_logged_with_its_message_id(written: list[Any]) -> None:
    failed = logged(written, "record failed")
    assert [(w["message_id"], w["reason"], w["level"]) for w in failed] == [
        ("m-b", "no such source", "WARNING"),
        ("m-b", "no such source", "WARNING"),
    ]
    responses = [w for w in written if isinstance(w, str)]
    assert responses == ["{'batchItemFailures': [{'itemIdentifier': 'm-b'}]}"] * 2


def test_libraries_log_json_from_warning_up(written: list[Any]) -> None:
    assert logged(written, "found credentials") == []
    throttled = logged(written, "throttled; retrying")
    assert len(throttled) == 4
    assert throttled[0]["job_id"] == "a" * 32  # the same correlation keys


def test_metrics_are_emf_once_per_invocation(written: list[Any]) -> None:
    documents = emf(written)
    aggregated = [d for d in documents if "JobsStarted" in d]
    assert [d["JobsStarted"] for d in aggregated] == [[1.0, 1.0], [1.0, 1.0]]
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Brief" for d in documents)
    stages = [d for d in documents if "StageDuration" in d]
    assert len(stages) == 4
    assert all(d["stage"] == "summarize" and d["service"] == "brief" for d in stages)
    cold = [d for d in documents if "ColdStart" in d]
    assert [d["function_name"] for d in cold] == ["brief-summarize"]  # first invocation only
