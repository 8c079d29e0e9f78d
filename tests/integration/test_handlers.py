"""Each Lambda handler, loaded from template.yaml as Lambda would, invoked with its event
from tests/events against moto's server: what `sam local invoke` would do, without Docker."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from brief.sweeper import SweepReport
from brief_local.functions import LambdaContext, load_module
from brief_local.template import Template, find_template
from brief_testing.pages import PageServer

EVENTS = Path(__file__).parents[1] / "events"
TEMPLATE = Template.load(find_template())


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


# Each function's sample event, as `sam local invoke FUNCTION -e tests/events/NAME` takes it.
EVENTS_OF = {
    "ApiFunction": ("api-create-job.json", "api-get-job.json"),
    "ResearchFunction": ("research.json",),
    "SummarizeFunction": ("summarize.json",),
    "CombineFunction": ("combine.json",),
    "DeadletterFunction": ("deadletter.json",),
    "SweeperFunction": ("sweeper.json",),
}


class Stack:
    """A bucket and the three work queues on moto, and the functions' environment (`env`)."""

    def __init__(self, endpoint: str) -> None:
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.s3 = boto3.client("s3", **kwargs)
        self.sqs = boto3.client("sqs", **kwargs)
        suffix = uuid.uuid4().hex[:8]
        self.bucket = f"brief-handlers-{suffix}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.queues = {
            role: self.sqs.create_queue(QueueName=f"{role}-{suffix}")["QueueUrl"]
            for role in ("intake", "summarize", "combine")
        }
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "BRIEF_BUCKET": self.bucket,
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            **{f"BRIEF_{role.upper()}_QUEUE_URL": url for role, url in self.queues.items()},
        }
        self.modules: list[ModuleType] = []

    def function(self, logical_id: str) -> Callable[[dict[str, Any]], Any]:
        """The function's handler, from a fresh container (module load), with a context."""
        spec = TEMPLATE.functions[logical_id]
        module = load_module(spec)
        self.modules.append(module)
        handler = getattr(module, spec.attribute)
        return lambda e: handler(e, LambdaContext(logical_id, spec.memory, spec.timeout))

    def take(self, role: str) -> list[dict[str, Any]]:
        """Receive everything on a queue, as SQS records in a Lambda event."""
        records: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queues[role], MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return records
            for m in got["Messages"]:
                records.append(
                    {
                        "messageId": m["MessageId"],
                        "body": m["Body"],
                        "eventSourceARN": f"arn:aws:sqs:us-east-1:1:{role}",
                    }
                )
                self.sqs.delete_message(
                    QueueUrl=self.queues[role], ReceiptHandle=m["ReceiptHandle"]
                )

    def close(self) -> None:
        for module in self.modules:
            module.container.close()


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    created = Stack(moto_endpoint)
    for name, value in created.env.items():
        monkeypatch.setenv(name, value)
    yield created
    created.close()


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer().start()
    yield server
    server.stop()


def api_event(method: str, path: str, body: object | None = None) -> dict[str, Any]:
    request = event("api-create-job.json")
    request["rawPath"] = path
    request["requestContext"]["http"]["method"] = method
    request["requestContext"]["http"]["path"] = path
    request["body"] = json.dumps(body) if body is not None else None
    request["headers"]["content-length"] = str(len((request["body"] or "").encode()))
    return request


def test_every_function_runs_the_pipeline_from_its_event(stack: Stack, pages: PageServer) -> None:
    api = stack.function("ApiFunction")
    body = {
        "question": "How do honeybees decide where to build a new nest?",
        "sources": pages.pages()[:3],
    }
    created = api(api_event("POST", "/jobs", body))
    assert created["statusCode"] == 202
    job_id = json.loads(created["body"])["job_id"]
    assert created["headers"]["location"] == f"/jobs/{job_id}"

    research = stack.function("ResearchFunction")
    assert research({"Records": stack.take("intake")}) == {"batchItemFailures": []}
    summarize = stack.function("SummarizeFunction")
    assert summarize({"Records": stack.take("summarize")}) == {"batchItemFailures": []}
    combine = stack.function("CombineFunction")
    assert combine({"Records": stack.take("combine")}) == {"batchItemFailures": []}

    got = api(api_event("GET", f"/jobs/{job_id}"))
    assert json.loads(got["body"])["state"] == "done"
    report = stack.s3.get_object(Bucket=stack.bucket, Key=f"jobs/{job_id}/report.md")
    assert "[3]" in report["Body"].read().decode()


def test_a_malformed_record_fails_alone_and_the_container_stays_warm(
    stack: Stack, pages: PageServer
) -> None:
    summarize = stack.function("SummarizeFunction")
    good = event("summarize.json")["Records"][0]
    bad = {**good, "messageId": "bad-1", "body": "{not json"}
    wrong = {**good, "messageId": "bad-2", "body": json.dumps({"v": 1, "kind": "combine"})}
    unknown = {**good, "messageId": "unknown-job"}  # the sample's job does not exist here
    response = summarize({"Records": [bad, wrong, unknown]})
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == [
        "bad-1",
        "bad-2",
        "unknown-job",
    ]
    module = stack.modules[-1]
    first = module.container.wiring
    summarize({"Records": []})
    assert module.container.wiring is first  # clients built once per container


def test_deadletter_marks_the_job_of_its_event_failed(stack: Stack, pages: PageServer) -> None:
    api = stack.function("ApiFunction")
    body = {"question": "How do honeybees decide?", "sources": pages.pages()[:1]}
    job_id = json.loads(api(api_event("POST", "/jobs", body))["body"])["job_id"]
    dead = event("deadletter.json")
    dead["Records"][0]["body"] = dead["Records"][0]["body"].replace("0" * 32, job_id)
    assert stack.function("DeadletterFunction")(dead) == {"batchItemFailures": []}
    view = json.loads(api(api_event("GET", f"/jobs/{job_id}"))["body"])
    assert view["state"] == "failed"
    assert "summarize step for source 2" in view["reason"]


def test_sweeper_fails_a_job_whose_research_never_ran(
    stack: Stack, pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = stack.function("ApiFunction")
    body = {"question": "How do honeybees decide?", "sources": pages.pages()[:1]}
    job_id = json.loads(api(api_event("POST", "/jobs", body))["body"])["job_id"]
    stack.take("intake")  # the research message is lost
    monkeypatch.setenv("BRIEF_STALL_TIMEOUT_S", "0.001")

    swept = stack.function("SweeperFunction")(event("sweeper.json"))

    assert swept["failed"] == [job_id]
    view = json.loads(api(api_event("GET", f"/jobs/{job_id}"))["body"])
    assert view["state"] == "failed"
    assert "(last step: job_created)" in view["reason"]
    assert stack.function("SweeperFunction")(event("sweeper.json"))["open"] == 0


def test_api_answers_problem_json_for_an_unknown_job(stack: Stack) -> None:
    response = stack.function("ApiFunction")(event("api-get-job.json"))
    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == "application/problem+json"


# Run by the Lambda Web Adapter (Handler: a start-up script): no Python handler takes an event.
# StreamFunction serves ApiFunction's app under uvicorn (tests/e2e runs that app the same way).
WEB_ADAPTER_FUNCTIONS = {"StreamFunction"}


def test_every_function_has_a_sample_event() -> None:
    assert set(EVENTS_OF) == set(TEMPLATE.functions) - WEB_ADAPTER_FUNCTIONS
    for names in EVENTS_OF.values():
        for name in names:
            assert (EVENTS / name).is_file(), f"no tests/events/{name}"


def test_sqs_events_are_what_lambda_delivers() -> None:
    for logical_id, names in EVENTS_OF.items():
        if not TEMPLATE.functions[logical_id].sqs_events:
            continue
        for name in names:
            for record in event(name)["Records"]:
                assert record["eventSource"] == "aws:sqs"
                assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324 - SQS's own checksum
                queue = record["eventSourceARN"].rsplit(":", 1)[1]
                polled = {e.queue for e in TEMPLATE.functions[logical_id].sqs_events}
                assert queue in polled, f"{name}: {logical_id} does not poll {queue}"


@pytest.mark.parametrize(
    ("name", "logical_id"),
    [(name, logical_id) for logical_id, names in EVENTS_OF.items() for name in names],
)
def test_each_sample_event_runs_on_its_function(name: str, logical_id: str, stack: Stack) -> None:
    """The events as shipped: the API answers; a record for a job that is not in this
    bucket fails alone (and comes back), except in the dead-letter function, which has
    nothing to mark and lets it go."""
    response = stack.function(logical_id)(event(name))
    if logical_id == "ApiFunction":
        assert response["statusCode"] == (202 if name == "api-create-job.json" else 404), response
        return
    if logical_id == "SweeperFunction":  # an empty bucket: nothing open, nothing to fail
        assert response == SweepReport(open=0, checked=0).as_dict()
        return
    ids = [r["messageId"] for r in event(name)["Records"]]
    failed = [] if logical_id == "DeadletterFunction" else ids
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
