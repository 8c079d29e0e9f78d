"""The whole pipeline on the local stack, driven through the HTTP API as a user would."""

from __future__ import annotations

import http.client
import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from brief.messages import SummarizeTask
from brief_local.stack import LocalStack
from brief_testing.pages import SAMPLES, PageServer

from .conftest import events_until, store_bare_job, wait_for

QUESTION = (SAMPLES / "question.txt").read_text().strip()


def submit(api: httpx.Client, sources: list[str], question: str = QUESTION) -> str:
    response = api.post("/jobs", json={"question": question, "sources": sources})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    assert response.headers["location"] == f"/jobs/{job_id}"
    return job_id


def test_five_source_job_reports_citing_every_source(
    api: httpx.Client, pages: PageServer, stack: LocalStack, aws: dict[str, Any]
) -> None:
    sources = pages.pages()[:5]
    job_id = submit(api, sources)
    view = wait_for(api, job_id)
    assert view["state"] == "done", view
    assert all(s["state"] in ("ok", "cached") for s in view["sources"]), view["sources"]
    assert all(v is not None for v in view["timings"].values())

    report = api.get(f"/jobs/{job_id}/report").json()
    assert [c["url"] for c in report["citations"]] == sources
    markdown = api.get(f"/jobs/{job_id}/report", headers={"Accept": "text/markdown"}).text
    for n in range(1, 6):
        assert f"[{n}]" in markdown
    stored = aws["s3"].get_object(Bucket=stack.bucket, Key=f"jobs/{job_id}/report.md")
    assert stored["Body"].read().decode() == markdown

    kinds = events_until(api, job_id, "report_ready")
    assert kinds[0] == "job_created"
    assert kinds[-1] == "report_ready"
    assert kinds.count("source_fetched") == 5
    assert kinds.count("summary_done") == 5


def test_failing_sources_are_reported_and_the_job_still_completes(
    api: httpx.Client, pages: PageServer
) -> None:
    good = pages.pages()[:2]
    bad = [
        f"{pages.url}/status/404",
        f"{pages.url}/bytes/100?delay=4",  # slower than BRIEF_FETCH_TIMEOUT_S
        f"{pages.url}/bytes/2000000?chunked=1",  # bigger than BRIEF_MAX_BODY_BYTES
    ]
    job_id = submit(api, good + bad)
    view = wait_for(api, job_id)
    assert view["state"] == "done", view
    reasons = [s["reason"] for s in view["sources"][2:]]
    assert "404" in reasons[0]
    assert "timed out" in reasons[1]
    assert "too large" in reasons[2]
    report = api.get(f"/jobs/{job_id}/report").json()
    assert [c["url"] for c in report["citations"]] == good
    assert [m["url"] for m in report["missing"]] == bad


def test_a_job_whose_sources_all_fail_ends_failed_with_reasons(
    api: httpx.Client, pages: PageServer
) -> None:
    job_id = submit(api, [f"{pages.url}/status/500", f"{pages.url}/nothing-here.html"])
    view = wait_for(api, job_id)
    assert view["state"] == "failed"
    assert "no source could be used" in view["reason"]
    assert "500" in view["reason"]
    assert "404" in view["reason"]
    problem = api.get(f"/jobs/{job_id}/report")
    assert problem.status_code == 409
    assert problem.headers["content-type"] == "application/problem+json"
    assert "failed" in problem.json()["detail"]


def test_a_poison_message_ends_in_the_dlq_and_fails_its_job(
    stack: LocalStack, aws: dict[str, Any], api: httpx.Client
) -> None:
    job_id = store_bare_job(stack, aws, QUESTION, "f" * 32)
    queue = stack.queue_urls["SummarizeQueue"]
    poison = SummarizeTask(job_id=job_id, index=7, expected=1).model_dump_json()
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=poison)
    aws["sqs"].send_message(QueueUrl=queue, MessageBody="{not json")

    view = wait_for(api, job_id, timeout_s=60)
    assert view["state"] == "failed"
    # Each delivery kept the error it ended with, and the reason names it.
    assert re.fullmatch(
        rf"job {job_id} has no usable source 8 \d+ times( in \d+ seconds?)?; "
        "the summarize step for source 8 was given up",
        view["reason"],
    ), view["reason"]
    # The deadletter function consumed both dead letters, the one naming no job included.
    dlq = stack.queue_urls["SummarizeDeadLetterQueue"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attributes = aws["sqs"].get_queue_attributes(
            QueueUrl=dlq,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if all(v == "0" for v in attributes.values()):
            break
        time.sleep(0.2)
    assert all(v == "0" for v in attributes.values()), attributes


def test_bad_requests_get_clear_errors(api: httpx.Client) -> None:
    response = api.post("/jobs", json={"question": "Why?", "sources": ["ftp://example.com/x"]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "sources.0" in response.json()["detail"]
    assert api.get("/jobs/" + "0" * 32).status_code == 404
    assert api.get("/jobs/not-a-job").status_code == 422


def test_a_connection_a_client_has_pooled_is_still_open_when_it_reuses_it(
    stack: LocalStack,
) -> None:
    # httpx keeps an idle connection for keepalive_expiry (5 s) and then reuses it without
    # checking: the API must not close it first, or that request meets a reset.
    pooled_s = httpx.Limits().keepalive_expiry
    assert pooled_s is not None
    url = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("GET", "/health")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        time.sleep(pooled_s + 1)
        connection.request("GET", "/health")  # the same socket: http.client does not reconnect
        again = connection.getresponse()
        again.read()
        assert again.status == 200
    finally:
        connection.close()


def test_a_batch_runs_through_the_intake_queue_and_reports_its_progress(
    api: httpx.Client, pages: PageServer
) -> None:
    sample = pages.pages()
    jobs = [{"question": QUESTION, "sources": sample[i : i + 2]} for i in range(3)]
    created = api.post("/batches", json={"jobs": jobs})
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = api.get(f"/batches/{batch_id}").raise_for_status().json()
        if view["counts"].get("done") == 3:
            break
        time.sleep(0.2)
    assert view["counts"] == {"done": 3}, view
    for job in view["jobs"]:
        report = api.get(f"/jobs/{job['job_id']}/report").json()
        assert len(report["citations"]) == 2
    listed = api.get("/jobs", params={"limit": 100}).json()["jobs"]
    assert {j["job_id"] for j in view["jobs"]} <= {j["job_id"] for j in listed}


def test_a_cancelled_job_stops_and_says_so(api: httpx.Client, pages: PageServer) -> None:
    job_id = submit(api, [f"{pages.url}/bytes/100?delay=30", *pages.pages()[:1]])
    cancelled = api.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["state"] == "cancelled"
    time.sleep(1.5)
    view = api.get(f"/jobs/{job_id}").json()
    assert view["state"] == "cancelled"
    assert view["summaries_done"] == 0
    again = api.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["detail"] == "the job has already ended: it is cancelled"
