"""The batches resource: many jobs in one call, run through the intake queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from brief.api.deps import BatchIdPath, CallerDep, StoreDep, WiringDep
from brief.api.problems import problems
from brief.jobstore.views import MAX_BATCH_PAGE
from brief.models import BatchJobState, BatchView, ResearchRequest

router = APIRouter(prefix="/batches", tags=["batches"], responses=problems(401, 422, 503))

MAX_BATCH = 10_000


class BatchRequest(BaseModel):
    """The jobs of a batch; each is a research request like `POST /jobs` takes."""

    jobs: Annotated[list[ResearchRequest], Field(min_length=1, max_length=MAX_BATCH)]


class BatchAccepted(BaseModel):
    """The answer to a new batch: where to follow it."""

    batch_id: str
    size: int
    status_url: str


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=problems(400, 413))
async def create_batch(
    request: BatchRequest, wiring: WiringDep, caller: CallerDep, response: Response
) -> BatchAccepted:
    """Start many jobs at once; each becomes a job of its own as the intake queue delivers it."""
    intake = await wiring.intake()
    batch = await intake.submit_batch(request.jobs, owner=caller)
    url = f"/batches/{batch.batch_id}"
    response.headers["Location"] = url
    return BatchAccepted(batch_id=batch.batch_id, size=batch.size, status_url=url)


@router.get("/{batch_id}", responses=problems(404))
async def get_batch(
    batch_id: BatchIdPath,
    store: StoreDep,
    caller: CallerDep,
    after: Annotated[int, Query(ge=-1, description="the `cursor` of the page before")] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH_PAGE)] = MAX_BATCH_PAGE,
    state: Annotated[list[BatchJobState] | None, Query(description="only jobs in these")] = None,
) -> BatchView:
    """How many of the batch's jobs are pending, running, done, failed or cancelled, and a
    page of its jobs by number (those in `state`, if given): five reads at any size."""
    states = frozenset(state) if state else None
    return await store.batch_view(batch_id, owner=caller, after=after, limit=limit, states=states)
