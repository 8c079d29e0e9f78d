"""The HTTP API on the in-memory world: what a caller sees when it creates and follows a job."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from brief.adapters.memory import MemoryBlobStore
from brief.api import create_app
from brief.api.deps import get_caller
from brief.errors import StorageUnavailable
from brief.messages import ResearchTask
from brief.models import JobRecord, Report

from .api_world import QUESTION, WorldWiring, create, sources
from .world import HOST, World

PROBLEM = "application/problem+json"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UNKNOWN_JOB = "0123456789abcdef0123456789abcdef"


class UnavailableBlobStore(MemoryBlobStore):
    """S3 answering 503 SlowDown to everything, as the S3 adapter reports it."""

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        raise StorageUnavailable("S3 is throttling requests (SlowDown)")

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable("S3 is throttling requests (SlowDown)")

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        raise StorageUnavailable("S3 is throttling requests (SlowDown)")


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://brief.test")


def as_caller(app: ASGIApp, sub: str) -> ASGIApp:
    """The app behind API Gateway with a JWT authorizer: Mangum puts the event in the scope."""

    async def with_identity(scope: Scope, receive: Receive, send: Send) -> None:
        event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": sub}}}}}
        await app({**scope, "aws.event": event}, receive, send)

    return with_identity


@pytest.fixture
def wiring(world: World) -> WorldWiring:
    return WorldWiring(world)


@pytest.fixture
def app(wiring: WorldWiring) -> FastAPI:
    return create_app(lambda: wiring)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# Creating a job


async def test_creating_a_job_answers_202_with_where_to_follow_it(
    client: httpx.AsyncClient, world: World
) -> None:
    urls = sources(world)
    response = await client.post(
        "/jobs", json={"question": f"  {QUESTION}\n", "sources": [*urls, urls[0]]}
    )

    assert response.status_code == 202
    body = response.json()
    job_id = body["job_id"]
    assert JOB_ID.match(job_id)
    assert response.headers["location"] == f"/jobs/{job_id}"
    assert body == {
        "job_id": job_id,
        "status_url": f"/jobs/{job_id}",
        "report_url": f"/jobs/{job_id}/report",
    }
    assert world.queue.sent["intake"] == [ResearchTask(job_id=job_id)]
    stored = JobRecord.model_validate_json(world.blobs.objects[f"jobs/{job_id}/request.json"])
    assert stored.owner == "anonymous"
    assert stored.request.question == QUESTION
    assert [str(u) for u in stored.request.sources] == urls


async def test_a_new_job_can_be_followed_at_its_location_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/jobs", json={"question": QUESTION, "sources": sources(world)})

    status = await client.get(response.headers["location"])

    assert status.status_code == 200
    assert status.json()["state"] == "queued"
    assert status.json()["question"] == QUESTION


async def test_each_new_job_gets_its_own_id_and_its_own_task(
    client: httpx.AsyncClient, world: World
) -> None:
    urls = sources(world)
    ids = [await create(client, urls) for _ in range(3)]

    assert len(set(ids)) == 3
    assert world.queue.sent["intake"] == [ResearchTask(job_id=i) for i in ids]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(
            {"question": "ab", "sources": ["https://example.org/"]},
            "question",
            "String should have at least 3 characters",
            id="question-too-short",
        ),
        pytest.param(
            {"question": "   a   ", "sources": ["https://example.org/"]},
            "question",
            "the question needs at least a few words",
            id="question-only-spaces",
        ),
        pytest.param(
            {"question": "q" * 2001, "sources": ["https://example.org/"]},
            "question",
            "String should have at most 2000 characters",
            id="question-too-long",
        ),
        pytest.param(
            {"sources": ["https://example.org/"]},
            "question",
            "Field required",
            id="question-missing",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/", "ftp://example.org/f"]},
            "sources.1",
            "URL scheme should be 'http' or 'https'",
            id="source-not-http",
        ),
        pytest.param(
            {"question": QUESTION, "sources": []},
            "sources",
            "List should have at least 1 item",
            id="no-sources",
        ),
        pytest.param(
            {"question": QUESTION, "sources": [f"https://example.org/{i}" for i in range(21)]},
            "sources",
            "List should have at most 20 items",
            id="too-many-sources",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "max_sources": 0},
            "max_sources",
            "Input should be greater than or equal to 1",
            id="max-sources-zero",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "depth": 4},
            "depth",
            "Input should be less than or equal to 3",
            id="deep-research-too-deep",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "breadth": 7},
            "breadth",
            "Input should be less than or equal to 6",
            id="deep-research-too-broad",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "max_cost_usd": -1},
            "max_cost_usd",
            "Input should be greater than 0",
            id="deep-research-negative-budget",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "max_seconds": 5},
            "max_seconds",
            "Input should be greater than or equal to 10",
            id="deep-research-too-short",
        ),
        pytest.param(
            {"question": QUESTION, "sources": ["https://example.org/"], "model": "big"},
            "model",
            "Extra inputs are not permitted",
            id="unknown-field",
        ),
    ],
)
async def test_an_invalid_request_is_a_422_problem_naming_the_field(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str, message: str
) -> None:
    response = await client.post("/jobs", json=body)

    problem = assert_problem(response, 422)
    named, _, why = problem["detail"].partition(": ")
    assert named == field or named.startswith(f"{field}.")
    assert message in why
    assert problem["errors"][0]["field"] == named
    assert world.blobs.objects == {}
    assert world.queue.sent["intake"] == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param(
            "http://☃.net/",
            "the host name ☃.net cannot be encoded (Codepoint U+2603 at position 1 of '☃' "
            "not allowed)",
            id="symbol-host",
        ),
        pytest.param(
            "http://xn--n3h.net/",
            "the host name xn--n3h.net cannot be decoded (Codepoint U+2603 at position 1 of "
            "'☃' not allowed)",
            id="undecodable-punycode",
        ),
        pytest.param("http://example.org:0/", "port 0 is out of range", id="port-zero"),
    ],
)
async def test_a_source_no_request_could_fetch_is_a_422_naming_it(
    client: httpx.AsyncClient, world: World, url: str, why: str
) -> None:
    body = {"question": QUESTION, "sources": ["https://example.org/", url]}
    response = await client.post("/jobs", json=body)

    problem = assert_problem(response, 422)
    assert problem["detail"] == f"sources.1.uri: Value error, not a URL that can be fetched: {why}"
    assert world.queue.sent["intake"] == []


async def test_a_body_that_is_not_json_is_a_422_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/jobs", content=b'{"question": ', headers={"content-type": "application/json"}
    )

    problem = assert_problem(response, 422)
    assert problem["detail"].startswith("body: JSON decode error")
    assert world.queue.sent["intake"] == []


async def test_an_unknown_route_is_a_404_problem_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-thing")
    assert assert_problem(response, 404)["title"] == "Not found"
    response = await client.delete("/jobs")
    assert assert_problem(response, 405)["title"] == "Method not allowed"


# Following a job


@pytest.mark.parametrize("suffix", ["", "/report", "/events"])
async def test_an_unknown_job_is_a_404_problem(client: httpx.AsyncClient, suffix: str) -> None:
    response = await client.get(f"/jobs/{UNKNOWN_JOB}{suffix}")

    problem = assert_problem(response, 404)
    assert problem["detail"] == "There is no job with that id for this caller."


@pytest.mark.parametrize("job_id", ["not-a-job", "A" * 32, "a" * 31, "a" * 33, "%2e%2e"])
@pytest.mark.parametrize("suffix", ["", "/report", "/events"])
async def test_a_malformed_job_id_is_a_422_problem(
    client: httpx.AsyncClient, job_id: str, suffix: str
) -> None:
    response = await client.get(f"/jobs/{job_id}{suffix}")

    assert assert_problem(response, 422)["detail"].startswith("job_id: String should match")


async def test_the_report_of_a_job_still_running_is_a_409_problem_saying_its_state(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))

    response = await client.get(f"/jobs/{job_id}/report")

    assert assert_problem(response, 409)["detail"] == "the job has no report; it is queued"


async def test_the_report_of_a_failed_job_is_a_409_problem_with_the_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, [f"http://{HOST}/gone"])
    await world.drain()

    response = await client.get(f"/jobs/{job_id}/report")

    detail = assert_problem(response, 409)["detail"]
    assert detail.startswith("the job has no report; it is failed: no source could be used")
    assert "404" in detail


async def test_a_second_cancel_is_a_409_problem_as_the_job_has_already_ended(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))

    first = await client.post(f"/jobs/{job_id}/cancel")
    second = await client.post(f"/jobs/{job_id}/cancel")

    assert first.status_code == 202
    assert first.json()["state"] == "cancelled"
    detail = assert_problem(second, 409)["detail"]
    assert detail == "the job has already ended: it is cancelled"
    assert (await client.get(f"/jobs/{job_id}")).json()["state"] == "cancelled"


async def test_a_finished_job_shows_done_with_every_source(
    client: httpx.AsyncClient, world: World
) -> None:
    urls = sources(world)
    job_id = await create(client, urls)
    await world.drain()

    view = (await client.get(f"/jobs/{job_id}")).json()

    assert view["state"] == "done"
    assert [s["url"] for s in view["sources"]] == urls
    assert view["summaries_done"] == view["summaries_expected"] == 2
    assert view["timings"]["total_ms"] is not None


async def test_the_report_is_json_by_default_and_markdown_when_asked(
    client: httpx.AsyncClient, world: World
) -> None:
    urls = sources(world)
    job_id = await create(client, urls)
    await world.drain()

    as_json = await client.get(f"/jobs/{job_id}/report")
    as_markdown = await client.get(f"/jobs/{job_id}/report", headers={"accept": "text/markdown"})

    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    report = Report.model_validate(as_json.json())
    assert report.job_id == job_id
    assert [c.url for c in report.citations] == urls
    assert as_markdown.status_code == 200
    assert as_markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert as_markdown.text == report.markdown
    assert as_markdown.text.startswith(f"# {QUESTION}\n")
    assert "[1]" in as_markdown.text


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/*"])
async def test_the_report_is_json_for_clients_that_do_not_ask_for_markdown(
    client: httpx.AsyncClient, world: World, accept: str
) -> None:
    job_id = await create(client, sources(world))
    await world.drain()

    response = await client.get(f"/jobs/{job_id}/report", headers={"accept": accept})

    assert response.headers["content-type"] == "application/json"
    assert response.json()["job_id"] == job_id


async def test_events_page_on_with_the_cursor_returning_only_newer_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))
    first = (await client.get(f"/jobs/{job_id}/events")).json()
    assert [e["kind"] for e in first["events"]] == ["job_created"]
    assert first["cursor"]

    await world.drain()
    second = (await client.get(f"/jobs/{job_id}/events", params={"after": first["cursor"]})).json()
    third = (await client.get(f"/jobs/{job_id}/events", params={"after": second["cursor"]})).json()

    kinds = [e["kind"] for e in second["events"]]
    assert kinds[0] == "retrieval_started"
    assert kinds[-1] == "report_ready"
    assert "job_created" not in kinds
    assert kinds.count("source_fetched") == kinds.count("summary_done") == 2
    assert second["cursor"] > first["cursor"]
    assert third == {"events": [], "cursor": second["cursor"]}


async def test_a_cursor_that_could_leave_the_job_is_a_400_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))

    response = await client.get(f"/jobs/{job_id}/events", params={"after": "../../other/x"})

    assert assert_problem(response, 400)["detail"].startswith("after ")


# Callers


async def test_a_job_is_invisible_to_every_caller_but_its_creator(
    app: FastAPI, world: World
) -> None:
    async with (
        client_for(as_caller(app, "alice")) as alice,
        client_for(as_caller(app, "bob")) as bob,
    ):
        job_id = await create(alice, sources(world))
        await world.drain()

        for suffix in ["", "/report", "/events"]:
            assert_problem(await bob.get(f"/jobs/{job_id}{suffix}"), 404)
            assert (await alice.get(f"/jobs/{job_id}{suffix}")).status_code == 200
    stored = JobRecord.model_validate_json(world.blobs.objects[f"jobs/{job_id}/request.json"])
    assert stored.owner == "alice"


async def test_an_anonymous_caller_cannot_see_a_signed_in_callers_job(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    async with client_for(as_caller(app, "alice")) as alice:
        job_id = await create(alice, sources(world))

    assert_problem(await client.get(f"/jobs/{job_id}"), 404)


def authorizer(**context: Any) -> dict[str, Any]:
    return {"requestContext": {"authorizer": context}}


@pytest.mark.parametrize(
    ("event", "caller"),
    [
        pytest.param(authorizer(jwt={"claims": {"sub": "user-1"}}), "user-1", id="jwt-sub"),
        pytest.param(
            authorizer(iam={"userArn": "arn:aws:iam::123456789012:user/ci"}),
            "arn:aws:iam::123456789012:user/ci",
            id="iam-user",
        ),
        pytest.param(authorizer(**{"lambda": {"principalId": "p-7"}}), "p-7", id="lambda"),
        pytest.param(
            authorizer(jwt={"claims": {"sub": "user-1"}}, **{"lambda": {"principalId": "p-7"}}),
            "user-1",
            id="jwt-before-lambda",
        ),
        pytest.param(authorizer(jwt={"claims": {}}), "anonymous", id="jwt-without-sub"),
        pytest.param(authorizer(jwt=None), "anonymous", id="null-jwt"),
        pytest.param({"requestContext": {}}, "anonymous", id="no-authorizer"),
        pytest.param({}, "anonymous", id="empty-event"),
        pytest.param(None, "anonymous", id="no-event"),
        pytest.param("not a dict", "anonymous", id="event-not-a-dict"),
    ],
)
def test_the_caller_is_the_authorizers_identity_or_anonymous(event: Any, caller: str) -> None:
    scope: dict[str, Any] = {"type": "http", "headers": []}
    if event is not None:
        scope["aws.event"] = event

    assert get_caller(Request(scope)) == caller


# Availability and discovery


@pytest.fixture
async def unavailable(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API whose storage is throttling every request."""
    world.blobs = UnavailableBlobStore()
    async with client_for(create_app(lambda: WorldWiring(world))) as c:
        yield c


@pytest.mark.parametrize("suffix", ["", "/report", "/events"])
async def test_storage_trouble_reading_a_job_is_a_503_problem_to_retry(
    unavailable: httpx.AsyncClient, suffix: str
) -> None:
    response = await unavailable.get(f"/jobs/{UNKNOWN_JOB}{suffix}")

    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"


async def test_storage_trouble_creating_a_job_is_a_503_and_nothing_is_queued(
    unavailable: httpx.AsyncClient, world: World
) -> None:
    response = await unavailable.post(
        "/jobs", json={"question": QUESTION, "sources": ["https://example.org/"]}
    )

    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    assert world.queue.sent["intake"] == []


async def test_health_answers_without_touching_storage(unavailable: httpx.AsyncClient) -> None:
    response = await unavailable.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_the_openapi_schema_lists_the_job_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    schema = json.loads(response.text)
    routes = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert {
        ("/jobs", "post"),
        ("/jobs/{job_id}", "get"),
        ("/jobs/{job_id}/report", "get"),
        ("/jobs/{job_id}/events", "get"),
    } <= routes
    report_200 = schema["paths"]["/jobs/{job_id}/report"]["get"]["responses"]["200"]
    assert {"application/json", "text/markdown", "application/pdf"} <= set(report_200["content"])
    assert "202" in schema["paths"]["/jobs"]["post"]["responses"]


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        ("text/markdown", "md"),
        ("application/json", "json"),
        ("text/markdown;q=0, application/json", "json"),
        ("application/json;q=0.5, text/markdown", "md"),
        ("*/*", "json"),
        ("text/markdown, */*", "md"),
        ("application/pdf", "pdf"),
        ("text/markdown;q=0.5, application/pdf", "pdf"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "html"),
    ],
)
def test_the_report_format_follows_the_accept_header(accept: str, fmt: str) -> None:
    from brief.api.jobs import wanted_format

    assert wanted_format(accept) == fmt


async def test_the_report_as_a_file_html_pdf_docx_with_its_citations_as_links(
    client: httpx.AsyncClient, world: World
) -> None:
    import io

    import docx
    import pypdfium2  # type: ignore[import-untyped]

    urls = sources(world)
    job_id = await create(client, urls)
    await world.drain()

    as_html = await client.get(f"/jobs/{job_id}/report", params={"format": "html"})
    assert as_html.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<a href="{urls[0]}">[1]</a>' in as_html.text
    assert "<script" not in as_html.text
    assert "http" not in as_html.text.split("<body>")[0]  # nothing loaded from elsewhere

    as_pdf = await client.get(f"/jobs/{job_id}/report", params={"format": "pdf"})
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.headers["content-disposition"] == f'attachment; filename="brief-{job_id}.pdf"'
    pdf = pypdfium2.PdfDocument(as_pdf.content)
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert " ".join(QUESTION.split()[:3]) in " ".join(text.split())

    asked = {"accept": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
    as_docx = await client.get(f"/jobs/{job_id}/report", headers=asked)
    document = docx.Document(io.BytesIO(as_docx.content))
    assert document.paragraphs[0].text == QUESTION
    links = {r.target_ref for r in document.part.rels.values() if "hyperlink" in r.reltype}
    assert set(urls) <= links


async def test_a_report_format_it_does_not_know_is_a_422(
    client: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(client, sources(world))
    await world.drain()

    response = await client.get(f"/jobs/{job_id}/report", params={"format": "odt"})

    assert assert_problem(response, 422)["detail"].startswith("format:")


async def test_a_body_over_the_limit_is_a_413_problem_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    from brief.api.app import MAX_BODY_BYTES

    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = await client.post(
        "/jobs", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 413)
    assert "limit" in problem["detail"]


async def test_a_chunked_body_over_the_limit_is_a_413_problem_and_is_not_read_to_its_end(
    client: httpx.AsyncClient,
) -> None:
    """No Content-Length to go by: the body is counted as it arrives, and reading stops at
    the limit (the client's 20 MB are never all read)."""
    from brief.api.app import MAX_BODY_BYTES

    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(20):
            sent += 1
            yield b" " * 1_000_000

    response = await client.post(
        "/jobs", content=body(), headers={"content-type": "application/json"}
    )

    problem = assert_problem(response, 413)
    assert f"{MAX_BODY_BYTES:,}" in problem["detail"]
    assert sent <= MAX_BODY_BYTES // 1_000_000 + 1


async def test_a_chunked_body_within_the_limit_is_read_whole(
    client: httpx.AsyncClient, world: World
) -> None:
    request = json.dumps({"question": "Why do glaciers move?", "sources": sources(world)})

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(request), 7):
            yield request[start : start + 7].encode()

    response = await client.post(
        "/jobs", content=body(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 202, response.text
