"""Callers cannot see or touch each other's jobs, on every route the API publishes.

The routes come from the app's own OpenAPI document, so a route added later is checked
without anyone remembering to list it: each operation must be classified below, and every
operation that names a job or a batch is called by another caller, in each representation
it offers (JSON, Markdown, the event stream). That caller gets the same 404 as for an id
that does not exist — not a 403, which would confirm the id — and nothing changes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from brief.api import create_app
from brief.api.auth import new_key, settings_entry
from brief.api.events import StreamPolicy, get_stream_policy
from brief.models import ResearchRequest
from brief.settings import Settings

from .api_world import QUESTION, WorldWiring, sources
from .world import World

ALICE, BOB = new_key(), new_key()
KEYS = (settings_entry("alice", ALICE), settings_entry("bob", BOB))
UNKNOWN = "f" * 32

# Every operation of the API, by how it is scoped to its caller.
SCOPED = "names a job or batch"  # another caller gets 404
LISTING = "lists the caller's own"  # another caller sees none of them
CREATES = "creates something the caller owns"  # owner is whoever calls
PUBLIC = "concerns no caller"
OPERATIONS: dict[tuple[str, str], str] = {
    ("POST", "/jobs"): CREATES,
    ("GET", "/jobs"): LISTING,
    ("GET", "/jobs/{job_id}"): SCOPED,
    ("GET", "/jobs/{job_id}/report"): SCOPED,
    ("GET", "/jobs/{job_id}/events"): SCOPED,
    ("POST", "/jobs/{job_id}/cancel"): SCOPED,
    ("POST", "/batches"): CREATES,
    ("GET", "/batches/{batch_id}"): SCOPED,
    ("POST", "/uploads"): CREATES,  # an upload's URI holds 128 random bits; no listing
    ("GET", "/health"): PUBLIC,
}


def build_app(world: World) -> FastAPI:
    wiring = WorldWiring(world, Settings(bucket="in-memory", api_keys=KEYS))
    app = create_app(lambda: wiring)
    app.dependency_overrides[get_stream_policy] = lambda: StreamPolicy(
        poll_s=0.005, idle_poll_s=0.01, settle_s=0, max_duration_s=0.5
    )
    return app


def published(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation in the app's OpenAPI document: method, path, operation."""
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def representations(operation: dict[str, Any]) -> list[str]:
    """The media types the operation's success answer comes in (its `Accept` choices)."""
    ok = next(v for k, v in operation["responses"].items() if k.startswith("2"))
    return sorted(ok.get("content", {"application/json": {}}))


def client(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://brief.test",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
async def app_and_ids(world: World) -> tuple[FastAPI, dict[str, str]]:
    """The app, and Alice's job (finished, with a report) and batch."""
    request = ResearchRequest.model_validate({"question": QUESTION, "sources": sources(world)})
    job = await world.intake().submit(request, owner="key:alice")
    batch = await world.intake().submit_batch([request], owner="key:alice")
    await world.drain()
    return build_app(world), {"job_id": job.job_id, "batch_id": batch.batch_id}


def test_every_published_operation_is_classified(world: World) -> None:
    operations = {(m, p) for m, p, _ in published(build_app(world))}

    assert operations == set(OPERATIONS), "classify the new route in OPERATIONS"


async def test_another_caller_gets_the_same_404_as_for_no_job_on_every_scoped_route(
    app_and_ids: tuple[FastAPI, dict[str, str]], world: World
) -> None:
    app, ids = app_and_ids
    before = dict(world.blobs.objects)
    checked = []
    async with client(app, ALICE) as alice, client(app, BOB) as bob:
        for method, path, operation in published(app):
            if OPERATIONS[(method, path)] != SCOPED:
                continue
            for media in representations(operation):
                headers = {"accept": media}
                theirs = await bob.request(method, path.format(**ids), headers=headers)
                unknown = path.format(**dict.fromkeys(ids, UNKNOWN))
                nothing = await bob.request(method, unknown, headers=headers)
                mine = await alice.request(method, path.format(**ids), headers=headers)

                assert theirs.status_code == 404, (method, path, media, theirs.text)
                assert theirs.headers["content-type"] == "application/problem+json"
                assert theirs.json() == nothing.json(), (method, path, media)
                assert mine.status_code not in {401, 403, 404}, (method, path, media, mine.text)
                checked.append((method, path, media))

    assert world.blobs.objects == before  # Bob's cancel changed nothing
    assert not await world.store.cancelled(ids["job_id"])
    # Every representation of every scoped route was tried, the stream and Markdown too.
    assert ("GET", "/jobs/{job_id}/events", "text/event-stream") in checked
    assert ("GET", "/jobs/{job_id}/report", "text/markdown") in checked
    assert ("GET", "/jobs/{job_id}/report", "application/pdf") in checked  # the exports too
    assert len(checked) == 10


async def test_a_listing_shows_only_the_callers_own_jobs(
    app_and_ids: tuple[FastAPI, dict[str, str]],
) -> None:
    app, ids = app_and_ids
    async with client(app, ALICE) as alice, client(app, BOB) as bob:
        theirs = (await bob.get("/jobs")).json()
        mine = (await alice.get("/jobs")).json()

    assert theirs == {"jobs": [], "cursor": None}
    assert ids["job_id"] in {j["job_id"] for j in mine["jobs"]}


async def test_what_a_caller_creates_is_theirs(world: World) -> None:
    app = build_app(world)
    body = {"question": QUESTION, "sources": sources(world)}
    async with client(app, BOB) as bob, client(app, ALICE) as alice:
        job = (await bob.post("/jobs", json=body)).json()["job_id"]
        batch = (await bob.post("/batches", json={"jobs": [body]})).json()["batch_id"]

        assert (await bob.get(f"/jobs/{job}")).status_code == 200
        assert (await bob.get(f"/batches/{batch}")).status_code == 200
        assert (await alice.get(f"/jobs/{job}")).status_code == 404
        assert (await alice.get(f"/batches/{batch}")).status_code == 404
