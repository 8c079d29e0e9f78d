"""Sizes the API bounds: URLs and questions a caller sends, and what a status can grow to.

A status goes back through API Gateway and Lambda, whose response limit is 6 MB: whatever a
request or a server it names sends, a job's status must stay well under that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from brief.api import create_app
from brief.models import (
    MAX_DOCUMENTS,
    MAX_QUESTION_CHARS,
    MAX_REASON_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    JobFailure,
    Retrieval,
    SourceOutcome,
)

from .api_world import QUESTION, WorldWiring, sources
from .world import HOST, World

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
WIDE = "\U0001f600"  # 4 bytes of UTF-8 as one character: the most JSON spends on a character


@pytest.fixture
def app(world: World) -> FastAPI:
    wiring = WorldWiring(world)
    return create_app(lambda: wiring)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://brief.test") as c:
        yield c


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


# What a caller sends


@pytest.mark.parametrize("length", [MAX_URL_CHARS + 1, 1_000_000])
async def test_a_url_over_the_limit_is_a_422_naming_the_source(
    client: httpx.AsyncClient, world: World, length: int
) -> None:
    fine = sources(world, 1)[0]
    long = f"http://{HOST}/"
    long += "a" * (length - len(long))

    response = await client.post("/jobs", json={"question": QUESTION, "sources": [fine, long]})

    problem = problem_of(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["sources.1.uri"]
    assert f"the URL is {length:,} characters; the limit is 4,096" in problem["detail"]


async def test_a_url_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    url = f"http://{HOST}/"
    url += "a" * (MAX_URL_CHARS - len(url))

    response = await client.post("/jobs", json={"question": QUESTION, "sources": [url]})

    assert response.status_code == 202, response.text


async def test_a_url_that_grows_past_the_limit_once_encoded_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    url = f"http://{HOST}/" + "é" * 1_500  # 1,514 characters, 9,014 once percent-encoded

    response = await client.post("/jobs", json={"question": QUESTION, "sources": [url]})

    assert "once encoded" in problem_of(response, 422)["detail"]


async def test_a_long_url_in_a_batch_names_its_job_and_source(
    client: httpx.AsyncClient, world: World
) -> None:
    fine = {"question": QUESTION, "sources": sources(world, 1)}
    bad = {"question": QUESTION, "sources": [f"http://{HOST}/" + "a" * MAX_URL_CHARS]}

    response = await client.post("/batches", json={"jobs": [fine, bad]})

    assert [e["field"] for e in problem_of(response, 422)["errors"]] == ["jobs.1.sources.0.uri"]


async def test_an_s3_key_over_s3s_own_limit_is_a_422(client: httpx.AsyncClient) -> None:
    uri = "s3://documents-bucket/" + "k" * 1_025

    response = await client.post("/jobs", json={"question": QUESTION, "sources": [uri]})

    assert "at most 1,024 bytes" in problem_of(response, 422)["detail"]


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\x00", "U+0000"),
        ("\x1b", "U+001B"),
        ("\x7f", "U+007F"),
        ("\x85", "U+0085"),
        ("\u202e", "U+202E"),
        ("\u2066", "U+2066"),
    ],
)
async def test_a_question_with_a_control_or_bidi_character_is_a_422_naming_it(
    client: httpx.AsyncClient, world: World, char: str, name: str
) -> None:
    question = f"Why do glaciers{char} move downhill?"

    response = await client.post("/jobs", json={"question": question, "sources": sources(world, 1)})

    problem = problem_of(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["question"]
    assert f"{name} at character 16 is refused" in problem["detail"]
    assert "bidirectional overrides" in problem["detail"]


async def test_tabs_and_line_breaks_in_a_question_are_spaces(
    client: httpx.AsyncClient, world: World
) -> None:
    question = "Why do glaciers\tmove\r\ndownhill?\n"

    response = await client.post("/jobs", json={"question": question, "sources": sources(world, 1)})

    assert response.status_code == 202, response.text
    status = (await client.get(response.headers["location"])).json()
    assert status["question"] == "Why do glaciers move downhill?"


async def test_a_search_query_with_a_control_character_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs", json={"question": QUESTION, "sources": [{"search": "glaciers\u202etxt.exe"}]}
    )

    assert [e["field"] for e in problem_of(response, 422)["errors"]] == ["sources.0.search.search"]


# What a status shows


async def test_a_failed_jobs_reason_is_shortened(client: httpx.AsyncClient, world: World) -> None:
    """Every source fails (nothing is served), and the job's reason lists each one with its
    URL: 20 URLs of 4,000 characters would make it 80 kB."""
    urls = [f"http://{HOST}/gone/{i}/" + "a" * 4_000 for i in range(20)]
    job_id = (await client.post("/jobs", json={"question": QUESTION, "sources": urls})).json()[
        "job_id"
    ]
    await world.drain()

    status = (await client.get(f"/jobs/{job_id}")).json()
    events = (await client.get(f"/jobs/{job_id}/events")).json()["events"]

    assert status["state"] == "failed"
    assert status["reason"].startswith("no source could be used (http://pages.test/gone/")
    assert len(status["reason"]) == MAX_REASON_CHARS
    assert status["reason"].endswith("…")
    failed = [e for e in events if e["kind"] == "job_failed"]
    assert failed
    assert all(len(e["detail"] or "") <= MAX_REASON_CHARS for e in failed)


def test_what_a_server_sends_is_bounded_in_a_sources_outcome() -> None:
    outcome = SourceOutcome(
        index=0,
        url="https://e.example/" + WIDE * 10_000,
        state="failed",
        reason="refused: " + "x" * 1_000_000,
        final_url='https://e.example/é "quoted" \\ path',
        canonical_url="https://e.example/" + "a" * 10_000,
        title="\u202eexe.txt " + "t" * 10_000,
        content_type="text/html; " + "p" * 10_000,
    )

    assert len(outcome.url) == MAX_URL_CHARS
    assert len(outcome.reason or "") == MAX_REASON_CHARS
    assert outcome.final_url == "https://e.example/%C3%A9%20%22quoted%22%20%5C%20path"
    assert outcome.canonical_url is None  # a cut URL would lead somewhere else
    assert (outcome.title or "").startswith("\ufffdexe.txt")
    assert len(outcome.title or "") == len(outcome.content_type or "") == MAX_TITLE_CHARS
    # Read back from storage, it is the same: shortening twice changes nothing.
    assert SourceOutcome.model_validate_json(outcome.model_dump_json()) == outcome


# The largest status

# "vector: {query} (in {collection})": the longest label a source's `via` can carry.
VIA_CHARS = len("vector: ") + 2_000 + len(" (in ") + 128 + len(")")


def status_bound() -> int:
    """The most bytes of JSON a job's status can take, from the limits.

    Each of at most 50 sources repeats text: its URL (a source's, or a search or vector
    result's, cut at 4,096 characters), its query label, reason, title and content type,
    each up to 4 bytes a character (UTF-8; controls are replaced, a quote is 2); its final
    and canonical URLs are ASCII, 4,096 at most. Then the question and the job's reason.
    """
    text = 4
    per_source = (
        text * (MAX_URL_CHARS + VIA_CHARS + MAX_REASON_CHARS + 2 * MAX_TITLE_CHARS)
        + 2 * MAX_URL_CHARS
        + 400  # keys, numbers, punctuation
    )
    return MAX_DOCUMENTS * per_source + text * (MAX_QUESTION_CHARS + MAX_REASON_CHARS) + 2_000


async def test_the_largest_status_a_valid_request_can_produce_is_well_under_6_mb(
    client: httpx.AsyncClient, world: World
) -> None:
    """Every field at its limit, in the widest characters: a 2,000-character question, five
    vector queries of 2,000 characters yielding 50 results, and servers that answer each
    result with the longest URL, redirect, canonical link, title, type and reason."""
    queries = [
        {"vector": WIDE * 2_000, "collection": f"{n}" + "c" * 127, "top_k": 10} for n in range(5)
    ]
    response = await client.post(
        "/jobs", json={"question": WIDE * MAX_QUESTION_CHARS, "sources": queries}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    ascii_url = "https://e.example/" + "a" * 10_000
    outcomes = [
        SourceOutcome(
            index=i,
            url="https://e.example/" + WIDE * 10_000,
            state="failed",
            kind="vector",
            via=f"vector: {WIDE * 2_000} (in {i // 10}{'c' * 127})",
            reason=WIDE * 1_000_000,
            final_url=ascii_url[:MAX_URL_CHARS],
            canonical_url=ascii_url[:MAX_URL_CHARS],
            title=WIDE * 10_000,
            content_type=WIDE * 10_000,
            bytes=10**12,
            chars=10**12,
            fetch_ms=10**9,
        )
        for i in range(MAX_DOCUMENTS)
    ]
    now = world.clock()
    store = world.store
    await store.put_retrieval(
        Retrieval(job_id=job_id, sources=outcomes, started_at=now, finished_at=now)
    )
    await store.fail(
        JobFailure(job_id=job_id, stage="research", reason=WIDE * 10**6, at=now + timedelta(1))
    )

    status = await client.get(f"/jobs/{job_id}")

    assert status.status_code == 200
    assert len(status.json()["sources"]) == MAX_DOCUMENTS
    body = len(status.content)
    # What Lambda counts: Mangum's answer as the python3.12 runtime serializes it.
    payload = len(
        json.dumps(
            {
                "statusCode": 200,
                "headers": dict(status.headers),
                "body": status.text,
                "isBase64Encoded": False,
            },
            ensure_ascii=False,
        ).encode()
    )
    print(f"\nlargest status: {body:,} bytes of JSON, {payload:,} as Lambda's response")
    assert body <= payload <= status_bound() < LAMBDA_RESPONSE_LIMIT / 3
    assert body > status_bound() * 0.9  # the case built is the worst, not a small one
