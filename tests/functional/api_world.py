"""The API over the in-memory world: shared by the API, events and auth tests."""

from __future__ import annotations

import httpx

from brief.jobstore import JobStore
from brief.pipeline import Intake
from brief.settings import Settings
from brief.wiring import Wiring

from .world import World, page

QUESTION = "Why do glaciers move downhill?"


class WorldWiring(Wiring):
    """The API's dependencies on the in-memory world: its store, and an intake on its queue."""

    def __init__(self, world: World, settings: Settings | None = None) -> None:
        super().__init__(settings or Settings(bucket="in-memory"))
        self.world = world

    async def store(self) -> JobStore:
        return self.world.store

    async def intake(self) -> Intake:
        return self.world.intake()


def sources(world: World, count: int = 2) -> list[str]:
    """`count` small glacier pages served by the world."""
    return [
        world.serve(
            f"/glacier{i}.html",
            page(
                f"Glacier article {i}",
                f"Glaciers move downhill because ice deforms under its weight, study {i} found.",
                f"Meltwater at the bed of a glacier lets the ice slide faster, note {i} says.",
            ),
        )
        for i in range(count)
    ]


async def create(client: httpx.AsyncClient, urls: list[str]) -> str:
    """Create a job through the API; its id."""
    response = await client.post("/jobs", json={"question": QUESTION, "sources": urls})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id
