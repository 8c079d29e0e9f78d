"""Dead letters on the local stack: poison on every queue ends kept (never looping) and fails
its job with the reason; `brief dlq show` lists what died; `brief dlq redrive` after a fix
brings the job to its report."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest

from brief.messages import CombineTask, SummarizeTask
from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer
from brief_testing.pages import SAMPLES, PageServer
from tests.work_messages import valid

from .conftest import events_until, fake_model_stage, store_bare_job, wait_for
from .test_cli import brief

QUESTION = (SAMPLES / "question.txt").read_text().strip()
T = TypeVar("T")
WORK = {"intake": "IntakeQueue", "summarize": "SummarizeQueue", "combine": "CombineQueue"}


# (name, body from (queue, job id), whether the job exists, whether it ends failed, the reason)
# SQS refuses an empty body; a blank one is the closest a queue can carry.
POISON: list[tuple[str, Callable[[str, str], str], bool, bool, str]] = [
    ("blank", lambda q, j: " ", True, False, "the {q} queue got an empty body"),
    (
        "not json",
        lambda q, j: "{not json",
        True,
        False,
        "the {q} queue got a body that is not JSON",
    ),
    ("no job", lambda q, j: "{}", True, False, "the {q} queue got a message that names no job"),
    (
        "wrong shape",
        lambda q, j: json.dumps({**valid(q, j), "priority": "high"}),
        True,
        True,
        "a message on the {q} queue was given up: not a valid Brief message: ",
    ),
    (
        "wrong version",
        lambda q, j: json.dumps({**valid(q, j), "v": 2}),
        True,
        True,
        "a message on the {q} queue was given up: not a valid Brief message: ",
    ),
    (
        "unknown job",
        lambda q, j: json.dumps(valid(q, j)),
        False,
        False,
        "the {q} queue got a message for job {j}, which is unknown",
    ),
    (
        "oversized",
        lambda q, j: json.dumps({**valid(q, j), "padding": "x" * 200_000}),
        True,
        True,
        "a message on the {q} queue was given up: not a valid Brief message: ",
    ),
]


def store_job(stack: LocalStack, aws: dict[str, Any]) -> str:
    """A job as the API stores it, with nothing queued for it."""
    return store_bare_job(stack, aws, QUESTION)


def kept(
    stack: LocalStack, aws: dict[str, Any], keys: set[str], timeout_s: float = 90
) -> dict[str, Any]:
    """The kept dead messages at `keys`, once every one is there."""
    deadline = time.monotonic() + timeout_s
    found: set[str] = set()
    while time.monotonic() < deadline:
        listing = aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix="dead/")
        found = {o["Key"] for o in listing.get("Contents", [])} & keys
        if found == keys:
            break
        time.sleep(0.2)
    assert found == keys, f"not kept: {sorted(keys - found)}"
    return {
        k: json.loads(aws["s3"].get_object(Bucket=stack.bucket, Key=k)["Body"].read()) for k in keys
    }


def eventually(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 30) -> T:
    """`read()` until `done` holds of it or the time is up; the last value read."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def depth(aws: dict[str, Any], url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return sum(int(v) for v in attributes["Attributes"].values())


def test_poison_on_every_queue_fails_alone_ends_kept_and_fails_its_job(
    stack: LocalStack, aws: dict[str, Any], api: httpx.Client, pages: PageServer
) -> None:
    beside = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:2]})
    sent: dict[str, tuple[str, str, bool, str]] = {}  # key -> queue, job, fails, reason
    for queue, logical_id in WORK.items():
        for _, body, exists, fails, reason in POISON:
            job_id = store_job(stack, aws) if exists else secrets.token_hex(16)
            url = stack.queue_urls[logical_id]
            message = aws["sqs"].send_message(QueueUrl=url, MessageBody=body(queue, job_id))
            key = f"dead/{queue}/{message['MessageId']}.json"
            sent[key] = (queue, job_id, fails, reason.format(q=queue, j=job_id))

    archive = kept(stack, aws, set(sent))

    for key, (queue, job_id, fails, reason) in sent.items():
        dead = archive[key]
        assert dead["queue"] == queue
        assert dead["receive_count"] >= 5  # the redrive policy's maxReceiveCount, then the DLQ
        assert dead["reason"].startswith(reason), (key, dead["reason"])
        assert dead["job_id"] == (job_id if fails else None)
        view = api.get(f"/jobs/{job_id}")
        if fails:
            # The message is kept first, then its job is failed: the two are moments apart.
            path = f"/jobs/{job_id}"
            view = eventually(partial(api.get, path), lambda v: v.json()["state"] != "queued")
            assert view.json()["state"] == "failed"
            assert view.json()["reason"] == dead["reason"]
        elif view.status_code == 200:
            assert view.json()["state"] == "queued"  # a message that named no job left it be
        else:
            assert view.status_code == 404
    oversized = [d for d in archive.values() if d["body_chars"] > 200_000]
    assert len(oversized) == 3
    assert all(len(d["body"]) == 64 * 1024 for d in oversized)  # kept, cut
    # Nothing loops: the work queues and their DLQs are empty again.
    # (A dead message is acknowledged after it is kept and its job failed: moments later.)
    for logical_id in WORK.values():
        urls = [
            stack.queue_urls[logical_id.replace("Queue", q)] for q in ("Queue", "DeadLetterQueue")
        ]
        for url in urls:
            assert eventually(lambda: depth(aws, url), lambda n: n == 0) == 0  # noqa: B023
    # The job sent alongside the poison was not held up by it.
    assert wait_for(api, beside.json()["job_id"])["state"] == "done"


def test_dlq_show_lists_what_died_with_its_job_reason_and_body(
    stack: LocalStack, aws: dict[str, Any]
) -> None:
    job_id = store_job(stack, aws)
    body = SummarizeTask(job_id=job_id, index=4, expected=5).model_dump_json(exclude_none=True)
    url = stack.queue_urls["SummarizeQueue"]
    message_id = aws["sqs"].send_message(QueueUrl=url, MessageBody=body)["MessageId"]
    kept(stack, aws, {f"dead/summarize/{message_id}.json"})
    where = ("--endpoint", stack.endpoint, "--stack", stack.name)

    shown = brief("dlq", "show", *where, "--job", job_id)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"summarize  job {job_id}")
    assert "ago  (kept, received " in lines[0]
    assert lines[0].endswith(message_id)
    assert re.fullmatch(
        rf"  why:  job {job_id} has no usable source 5 \d+ times( in \d+ seconds?)?; "
        "the summarize step for source 5 was given up",
        lines[1],
    ), lines[1]
    assert lines[2] == f"  body: {body}"
    assert lines[3] == "1 dead message (1 kept, 0 still in a DLQ)"

    as_json = json.loads(brief("dlq", "show", *where, "--job", job_id, "--json").stdout)
    assert [(d["message_id"], d["queue"], d["job_id"], d["kept"]) for d in as_json] == [
        (message_id, "summarize", job_id, True)
    ]
    other = brief("dlq", "show", *where, "--queue", "combine", "--job", job_id)
    assert other.stdout == "No dead messages.\n"


@pytest.fixture(scope="module")
def models() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def model_stack(models: FakeModelServer) -> Iterator[LocalStack]:
    """A stack whose summaries come from the fake model: one call per delivery, or as many
    as 429s with a Retry-After of 1 s fit in 3 s of waiting."""
    stage = fake_model_stage(models.url, attempts=1, throttle_budget_s=3)
    options = StackOptions(
        environment={
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_SUMMARIZE_MODEL": json.dumps(stage),
        },
        retry_after_s=0,
    )
    with running_stack(options) as running:
        yield running


def test_redrive_after_the_model_is_fixed_brings_the_job_to_its_report(
    model_stack: LocalStack, models: FakeModelServer, pages: PageServer
) -> None:
    where = ("--endpoint", model_stack.endpoint, "--stack", model_stack.name)
    models.set_faults(server_error=1.0)  # the model is down: every summary fails, retried
    with httpx.Client(base_url=model_stack.api_url, timeout=30) as api:
        created = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:1]})
        job_id = created.json()["job_id"]
        failed = wait_for(api, job_id, timeout_s=90)
        assert failed["state"] == "failed"
        assert re.fullmatch(
            r"the model openai:fake-small answered 500 Internal Server Error \d+ times"
            r"( in \d+ seconds?)?; the summarize step for source 1 was given up",
            failed["reason"],
        ), failed["reason"]
        shown = brief("dlq", "show", *where, "--job", job_id)
        assert shown.stdout.startswith(f"summarize  job {job_id}"), shown.stdout

        models.set_faults(server_error=0.0)  # the fix
        redriven = brief("dlq", "redrive", *where, "--job", job_id, "--yes")

        assert redriven.returncode == 0, redriven.stdout + redriven.stderr
        lines = redriven.stdout.splitlines()
        assert lines[0] == f"Job {job_id} revived (it had failed: {failed['reason']})"
        assert lines[1].startswith("Sent ")
        assert lines[1].endswith(f" back to the summarize queue (job {job_id})")
        assert lines[-1] == "Redrove 1 dead message."
        done = wait_for(api, job_id, timeout_s=60)
        assert done["state"] == "done", done
        assert done["reason"] is None
        kinds = events_until(api, job_id, "report_ready")
        assert kinds.index("job_failed") < kinds.index("job_redriven") < kinds.index("report_ready")
        report = api.get(f"/jobs/{job_id}/report").json()
        assert [c["url"] for c in report["citations"]] == pages.pages()[:1]
    after = brief("dlq", "show", *where, "--job", job_id)
    assert after.stdout == "No dead messages.\n"


def test_a_throttling_model_shows_in_the_status_and_names_itself_when_the_job_fails(
    model_stack: LocalStack, models: FakeModelServer, pages: PageServer
) -> None:
    models.set_faults(rate_limit=1.0, retry_after_s=1.0)  # the model throttles, for good
    try:
        with httpx.Client(base_url=model_stack.api_url, timeout=30) as api:
            # A question no other test asks: no summary of it is in the model-output cache.
            request = {
                "question": f"{QUESTION} ({secrets.token_hex(4)})",
                "sources": pages.pages()[:1],
            }
            job_id = api.post("/jobs", json=request).json()["job_id"]
            view = eventually(
                lambda: api.get(f"/jobs/{job_id}").json(),
                lambda v: (
                    v["state"] in ("done", "failed") or any(s["waiting"] for s in v["sources"])
                ),
                timeout_s=60,
            )
            waiting = view["sources"][0]["waiting"]
            assert waiting is not None, view
            assert (waiting["provider"], waiting["model"]) == ("openai", "fake-small")
            assert (waiting["status"], waiting["retry_after_s"]) == (429, 1.0)
            assert re.fullmatch(
                r"openai:fake-small answered 429 Too Many Requests \(attempt \d+\); "
                r"retrying (in 1\.\d s|later)",
                waiting["detail"],
            ), waiting

            failed = wait_for(api, job_id, timeout_s=120)
            assert failed["state"] == "failed"
            assert re.fullmatch(
                r"the model openai:fake-small answered 429 Too Many Requests \d+ times in "
                r"\d+ seconds; the summarize step for source 1 was given up",
                failed["reason"],
            ), failed["reason"]
            events = api.get(f"/jobs/{job_id}/events").json()["events"]
            retries = [e for e in events if e["kind"] == "model_retry"]
            assert retries
            assert all(e["index"] == 0 for e in retries)
            assert all(e["retry"]["status"] == 429 for e in retries)
            assert events[-1]["kind"] == "job_failed"
            assert events[-1]["detail"] == failed["reason"]
            assert failed["sources"][0]["waiting"] is None  # the job has ended: no more waits
    finally:
        models.set_faults(rate_limit=0.0)


def test_redrive_leaves_a_message_whose_job_is_done(
    stack: LocalStack, aws: dict[str, Any], api: httpx.Client, pages: PageServer
) -> None:
    job_id = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:1]}).json()[
        "job_id"
    ]
    assert wait_for(api, job_id)["state"] == "done"
    # A late duplicate of its combine, mangled: it dies, and the job keeps its report.
    body = json.dumps({**CombineTask(job_id=job_id).model_dump(mode="json"), "v": 2})
    url = stack.queue_urls["CombineQueue"]
    message_id = aws["sqs"].send_message(QueueUrl=url, MessageBody=body)["MessageId"]
    key = f"dead/combine/{message_id}.json"
    kept(stack, aws, {key})
    assert api.get(f"/jobs/{job_id}").json()["state"] == "done"
    where = ("--endpoint", stack.endpoint, "--stack", stack.name)

    redriven = brief("dlq", "redrive", *where, "--job", job_id, "--yes")

    assert redriven.returncode == 1
    assert redriven.stdout.splitlines() == [
        f"Left {message_id} (combine): job {job_id} is done: sending it again would change nothing",
        "Redrove 0 dead messages.",
    ]
    assert aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix=key)["KeyCount"] == 1
