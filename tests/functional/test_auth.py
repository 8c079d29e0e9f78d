"""Callers: API keys, authorizer identities and anonymous callers, and who sees which job."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from brief.api import create_app
from brief.api.auth import Keyring, key_hash, new_key, settings_entry
from brief.api.events import StreamPolicy, get_stream_policy
from brief.settings import Settings
from brief_cli import cli

from .api_world import QUESTION, WorldWiring
from .world import World, page

PROBLEM = "application/problem+json"
ALICE, BOB = new_key(), new_key()
KEYS = (settings_entry("alice", ALICE), settings_entry("bob", BOB))
FAST = StreamPolicy(poll_s=0.005, idle_poll_s=0.01, settle_s=0, max_duration_s=2)
JOB = "0" * 32


def app_for(world: World, api_keys: tuple[str, ...] = KEYS) -> FastAPI:
    wiring = WorldWiring(world, Settings(bucket="in-memory", api_keys=api_keys))
    app = create_app(lambda: wiring)
    app.dependency_overrides[get_stream_policy] = lambda: FAST
    return app


def client_for(app: Any, key: str | None = None, header: str = "bearer") -> httpx.AsyncClient:
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brief.test", headers=headers
    )


@pytest.fixture
def app(world: World) -> FastAPI:
    return app_for(world)


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, ALICE) as c:
        yield c


@pytest.fixture
async def bob(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, BOB, header="x-api-key") as c:
        yield c


def request_body(world: World) -> dict[str, Any]:
    url = world.serve(
        "/glacier.html",
        page("Glaciers", "Glaciers move downhill because ice deforms under its own weight."),
    )
    return {"question": QUESTION, "sources": [url]}


async def create(client: httpx.AsyncClient, world: World) -> str:
    response = await client.post("/jobs", json=request_body(world))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


# Every route of the API, as (method, path, JSON body); {job} and {batch} are filled in.
ROUTES = [
    ("POST", "/jobs", {"question": QUESTION, "sources": ["https://example.org/"]}),
    ("GET", "/jobs", None),
    ("GET", "/jobs/{job}", None),
    ("GET", "/jobs/{job}/report", None),
    ("GET", "/jobs/{job}/events", None),
    ("POST", "/jobs/{job}/cancel", None),
    ("POST", "/batches", {"jobs": [{"question": QUESTION, "sources": ["https://example.org/"]}]}),
    ("GET", "/batches/{job}", None),
    ("POST", "/uploads", {"filename": "notes.pdf"}),
]


# Keys configured: no key, no entry


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_without_a_key_every_route_is_a_401_problem_with_a_bearer_challenge(
    app: FastAPI, world: World, method: str, path: str, body: Any
) -> None:
    async with client_for(app) as anonymous:
        response = await anonymous.request(method, path.format(job=JOB), json=body)

    problem = assert_problem(response, 401)
    assert problem["title"] == "Unauthorized"
    assert "Authorization: Bearer" in problem["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert world.blobs.objects == {}
    assert world.queue.sent["intake"] == []


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
async def test_a_wrong_key_is_a_401_problem_and_the_key_is_never_logged(
    app: FastAPI, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = new_key()
    caplog.set_level(logging.DEBUG)
    async with client_for(app, wrong, header) as stranger:
        response = await stranger.get("/jobs")

    problem = assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert wrong not in json.dumps(problem)
    assert all(wrong not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("authorization", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer   "])
async def test_an_authorization_that_is_not_a_bearer_key_is_a_401(
    app: FastAPI, authorization: str
) -> None:
    async with client_for(app) as c:
        response = await c.get("/jobs", headers={"Authorization": authorization})

    assert_problem(response, 401)


async def test_the_page_and_health_need_no_key(app: FastAPI) -> None:
    async with client_for(app) as anonymous:
        assert (await anonymous.get("/health")).status_code == 200
        assert (await anonymous.get("/")).status_code == 200


async def test_a_key_in_either_header_makes_its_holder_the_owner(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, world: World
) -> None:
    mine = await create(alice, world)
    theirs = await create(bob, world)

    records = world.store
    assert (await records.job(mine)).owner == "key:alice"
    assert (await records.job(theirs)).owner == "key:bob"


async def test_an_authorizer_identity_needs_no_key(app: FastAPI, world: World) -> None:
    async def behind_api_gateway(scope: Scope, receive: Receive, send: Send) -> None:
        event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "user-1"}}}}}
        await app({**scope, "aws.event": event}, receive, send)

    async with client_for(behind_api_gateway) as signed_in:
        job_id = await create(signed_in, world)

    assert (await world.store.job(job_id)).owner == "user-1"


# Isolation: a job belongs to its caller


async def test_another_callers_job_is_a_404_on_every_route(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, world: World
) -> None:
    job_id = await create(alice, world)
    batch = await alice.post("/batches", json={"jobs": [request_body(world)]})
    batch_id = batch.json()["batch_id"]
    await world.drain()

    for method, path, headers in [
        ("GET", f"/jobs/{job_id}", {}),
        ("GET", f"/jobs/{job_id}/report", {}),
        ("GET", f"/jobs/{job_id}/report", {"accept": "text/markdown"}),
        ("GET", f"/jobs/{job_id}/events", {}),
        ("GET", f"/jobs/{job_id}/events", {"accept": "text/event-stream"}),
        ("POST", f"/jobs/{job_id}/cancel", {}),
        ("GET", f"/batches/{batch_id}", {}),
    ]:
        assert_problem(await bob.request(method, path, headers=headers), 404)
        if method == "GET":
            assert (await alice.request(method, path, headers=headers)).status_code == 200

    listed = (await bob.get("/jobs")).json()
    assert listed == {"jobs": [], "cursor": None}
    assert job_id in {j["job_id"] for j in (await alice.get("/jobs")).json()["jobs"]}
    assert not await world.store.cancelled(job_id)


async def test_with_no_keys_configured_every_caller_is_anonymous(world: World) -> None:
    app = app_for(world, api_keys=())
    async with client_for(app) as nobody, client_for(app, new_key()) as with_a_key:
        job_id = await create(nobody, world)
        seen = await with_a_key.get(f"/jobs/{job_id}")

    assert seen.status_code == 200  # a key is simply not needed, so it does not matter
    assert (await world.store.job(job_id)).owner == "anonymous"


# The keys themselves


def test_each_configured_hash_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    keys = [new_key() for _ in range(3)]
    ring = Keyring.parse([settings_entry(f"k{n}", k) for n, k in enumerate(keys)])

    assert ring.identify(keys[0]) == "k0"
    assert ring.identify(keys[2]) == "k2"
    assert ring.identify("not-" + keys[1]) is None
    # Every entry is compared, found or not, first or last: digests of equal length.
    assert compared == [(32, 32)] * 9


def test_settings_hold_key_hashes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIEF_API_KEYS", f" {KEYS[0]} ,{KEYS[1]},")

    settings = Settings(bucket="b")

    assert settings.api_keys == KEYS
    assert ALICE not in repr(settings)


@pytest.mark.parametrize(
    "entry", ["alice", f"alice:{ALICE}", "alice:" + "0" * 63, "a b:" + "0" * 64]
)
def test_a_settings_entry_that_is_not_a_name_and_hash_is_refused_without_echoing_it(
    entry: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(bucket="b", api_keys=(entry,))

    assert "not `name:sha256hex`" in str(caught.value)
    assert entry not in str(caught.value)


async def test_a_key_from_brief_keys_new_is_admitted(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "new", "carol"]) == 0
    printed = capsys.readouterr().out
    key = re.search(r"^  (brief_\S+)$", printed, re.M)
    entry = re.search(r"^  BRIEF_API_KEYS=(\S+)$", printed, re.M)
    assert key
    assert entry
    assert entry.group(1) == f"carol:{key_hash(key.group(1))}"

    app = app_for(world, api_keys=(entry.group(1),))
    async with client_for(app, key.group(1)) as carol:
        job_id = await create(carol, world)

    assert (await world.store.job(job_id)).owner == "key:carol"


def test_brief_keys_new_refuses_a_name_that_cannot_be_an_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["keys", "new", "carol smith"]) == 2
    assert "name" in capsys.readouterr().err


# The published API


async def test_the_openapi_schema_is_valid_and_documents_keys_and_streams(app: FastAPI) -> None:
    async with client_for(app) as anonymous:
        schema = (await anonymous.get("/openapi.json")).json()

    validate(schema)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKeyBearer"]["description"],
    }
    assert schemes["ApiKeyHeader"]["in"] == "header"
    events = schema["paths"]["/jobs/{job_id}/events"]["get"]
    assert {"application/json", "text/event-stream"} <= set(events["responses"]["200"]["content"])
    assert "Last-Event-ID" in {p["name"] for p in events["parameters"]}
    assert {"ApiKeyBearer": []} in events["security"]
    assert "/" not in schema["paths"]  # the web page is not part of the API
