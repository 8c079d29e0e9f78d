"""Hostile input: a property-based fuzz of every operation in the API's OpenAPI schema.

Schemathesis generates requests from the published schema, valid and invalid (bodies,
path and query parameters, headers), and sends them to the app in process. Every response
must be one the schema documents: no 5xx, a documented status and content type, a body and
headers that match their schema, invalid input rejected, valid input accepted.

Each case is sent by the job's owner (most cases), by another caller, or with no key, and
its job or batch id is, at random, one the generator made up or one of the owner's real
ones (a finished job with a report, a job still running, a batch), so the fuzz reaches the
answers a real job gives and not only 404s. Whoever is not the owner must get a 401 (no
key) or a 404 (another caller's job, exactly as for an id that does not exist).

Seeded (`derandomize`) and bounded (`EXAMPLES` per operation), so a run is the same run
every time and takes a few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue
from brief.adapters.uploads import S3UploadGrants
from brief.api import create_app
from brief.api.auth import new_key, settings_entry
from brief.api.events import StreamPolicy, get_stream_policy
from brief.models import ResearchRequest
from brief.settings import Settings

from .api_world import QUESTION, WorldWiring, sources
from .world import World

EXAMPLES = 40  # generated cases per operation (each also replays its checks' variants)
ALICE, BOB = new_key(), new_key()
KEYS = (settings_entry("alice", ALICE), settings_entry("bob", BOB))
OWNER = "key:alice"


class Presigner:
    """S3's `generate_presigned_post`, offline: the grant's shape without a client."""

    async def generate_presigned_post(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "url": "https://in-memory.s3.amazonaws.com/",
            "fields": {"key": kwargs["Key"], **kwargs["Fields"], "policy": "e30="},
        }


class FuzzWiring(WorldWiring):
    """The functional tests' API wiring, with uploads granted offline."""

    async def uploads(self) -> S3UploadGrants:
        return S3UploadGrants(Presigner(), "in-memory", max_bytes=self.settings.max_document_bytes)


@dataclass(frozen=True)
class Seeded:
    """The owner's real resources, for cases to aim at."""

    done: str  # a job with a report
    running: str  # a job still retrieving (it can be cancelled)
    batch: str


async def seed(world: World) -> Seeded:
    """One finished job, one queued job and one batch, all the owner's."""
    intake = world.intake()
    request = ResearchRequest.model_validate({"question": QUESTION, "sources": sources(world)})
    done = await intake.submit(request, owner=OWNER)
    await world.drain()
    running = await intake.submit(request, owner=OWNER)
    batch = await intake.submit_batch([request, request], owner=OWNER)
    return Seeded(done=done.job_id, running=running.job_id, batch=batch.batch_id)


@dataclass
class Tally:
    """How many cases the fuzz sent, per operation."""

    cases: dict[str, int]


TALLY = Tally(cases={})


# The app, and the schema it publishes, are built once, when pytest collects the cases (it
# only renders its OpenAPI document then); each test gives the wiring a fresh world.
WIRING = FuzzWiring(
    World(MemoryBlobStore(), MemoryTaskQueue(), {}), Settings(bucket="in-memory", api_keys=KEYS)
)
# Keys are the test's to choose (owner, other caller, none), not the generator's.
CONFIG = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
APP = create_app(lambda: WIRING)
# A stream of a job that never ends closes after a moment, not after ten minutes.
APP.dependency_overrides[get_stream_policy] = lambda: StreamPolicy(
    poll_s=0.005, idle_poll_s=0.01, settle_s=0, max_duration_s=0.2
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)

# Operations whose request has rules JSON Schema cannot state (a source must parse as a URL;
# the sources together may yield at most 50 documents; an event cursor must fall within the
# job's lifetime): a schema-valid request can still be refused, so "valid data is accepted"
# is not asked of them; a 422 must name the field.
SEMANTIC = {("POST", "/jobs"), ("POST", "/batches"), ("GET", "/jobs/{job_id}/events")}


@pytest.fixture
def seeded(world: World) -> Seeded:
    """The test's world behind the app, with the owner's resources in it."""
    WIRING.world = world
    return asyncio.run(seed(world))


@pytest.fixture(scope="module", autouse=True)
def report_tally() -> Iterator[None]:
    """Prints the number of cases (`pytest -s` shows it)."""
    yield
    total = sum(TALLY.cases.values())
    print(f"\nfuzz: {total} cases over {len(TALLY.cases)} operations: {TALLY.cases}")


CALLERS = st.sampled_from(["owner", "owner", "owner", "owner", "other", "anonymous"])
TARGETS = st.sampled_from(["generated", "done", "running"])
# What a client asks for, where a route negotiates (the report's Markdown, the event stream).
ACCEPTS = st.sampled_from([None, "text/markdown", "text/event-stream", "*/*"])
NEGOTIATED = {"/jobs/{job_id}/report", "/jobs/{job_id}/events"}


@schema.parametrize()
@schema.given(caller=CALLERS, target=TARGETS, accept=ACCEPTS)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # One world serves all of an operation's cases on purpose, as one bucket serves a
    # deployment's callers: the jobs that cases create stay for the cases after them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_answer_is_documented_and_no_input_is_a_server_error(
    case: schemathesis.Case[Any], caller: str, target: str, accept: str | None, seeded: Seeded
) -> None:
    aimed = aim(case, target, seeded)
    if aimed and accept is not None and case.path in NEGOTIATED:
        case.headers["accept"] = accept
    headers = {
        "owner": {"Authorization": f"Bearer {ALICE}"},
        "other": {"X-API-Key": BOB},
        "anonymous": {},
    }[caller]
    label = f"{case.method} {case.path}"
    TALLY.cases[label] = TALLY.cases.get(label, 0) + 1

    semantic = (case.method.upper(), case.path) in SEMANTIC
    excluded: list[schemathesis.CheckFunction] = [positive_data_acceptance] if semantic else []
    response = case.call_and_validate(headers=headers, excluded_checks=excluded)

    if case.path != "/health" and caller == "anonymous":
        # Refused, whatever the request; only a body that is not JSON at all is refused
        # before the key is read (FastAPI decodes the body first), which tells nothing.
        assert response.status_code == 401 or unreadable_body(response), response.text
    if aimed and caller == "other":
        assert response.status_code == 404, response.text  # as for an id that does not exist
    if semantic and response.status_code == 422:
        assert response.json()["errors"], response.text


def unreadable_body(response: schemathesis.Response) -> bool:
    """Whether the answer refuses the body for not being JSON (400 or 422 on `body`)."""
    problem = response.json()
    if response.status_code == 400:
        return "parsing the body" in problem["detail"]
    return response.status_code == 422 and [e["field"] for e in problem["errors"]] == ["body"]


def aim(case: schemathesis.Case[Any], target: str, seeded: Seeded) -> bool:
    """Point a valid case's job or batch id at one of the owner's, when `target` says so (an
    invalid case keeps what the generator made: its id may be the part that is invalid)."""
    path = case.path_parameters or {}
    if target == "generated" or case.meta is None or not case.meta.generation.mode.is_positive:
        return False
    if "job_id" in path:
        path["job_id"] = seeded.done if target == "done" else seeded.running
        return True
    if "batch_id" in path:
        path["batch_id"] = seeded.batch
        return True
    return False
