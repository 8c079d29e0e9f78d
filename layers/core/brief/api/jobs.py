"""The jobs resource: create a research job, follow it, read its report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from brief.api.deps import CallerDep, JobIdPath, StoreDep, WiringDep
from brief.api.negotiation import preferred
from brief.api.problems import problems
from brief.concurrency import all_of
from brief.errors import ReportNotReady
from brief.exports import DOCX, FORMATS, MEDIA_TYPES, export
from brief.models import JobView, Report, ResearchRequest

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=problems(401, 422, 503))


class Accepted(BaseModel):
    """The answer to a new job: where to follow it."""

    job_id: str
    status_url: str
    report_url: str


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=problems(400, 413))
async def create_job(
    request: ResearchRequest, wiring: WiringDep, caller: CallerDep, response: Response
) -> Accepted:
    """Start a research job; it runs in the background and this returns at once."""
    intake = await wiring.intake()
    record = await intake.submit(request, owner=caller)
    url = f"/jobs/{record.job_id}"
    response.headers["Location"] = url
    return Accepted(job_id=record.job_id, status_url=url, report_url=f"{url}/report")


class JobListItem(BaseModel):
    """One of the caller's jobs."""

    job_id: str
    question: str
    created_at: datetime
    batch_id: str | None
    state: str


class JobPage(BaseModel):
    """A page of the caller's jobs, newest first; pass `cursor` as `after` for the next."""

    jobs: list[JobListItem]
    cursor: str | None


@router.get("")
async def list_jobs(
    store: StoreDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=100, pattern=r"^[0-9a-z_\-.]+$")] = None,
) -> JobPage:
    """The caller's jobs, newest first, with each one's state."""
    summaries, cursor = await store.owner_jobs(caller, after=after, limit=limit)
    views = await all_of(*(store.view(j.job_id) for j in summaries))
    items = [
        JobListItem(
            job_id=j.job_id,
            question=j.question,
            created_at=j.created_at,
            batch_id=j.batch_id,
            state=v.state,
        )
        for j, v in zip(summaries, views, strict=True)
    ]
    return JobPage(jobs=items, cursor=cursor)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, responses=problems(404, 409))
async def cancel_job(job_id: JobIdPath, wiring: WiringDep, caller: CallerDep) -> JobView:
    """Stop the job: nothing more is fetched or summarized for it. 409 if it already ended."""
    intake = await wiring.intake()
    await intake.cancel(job_id, owner=caller)
    store = await wiring.store()
    return await store.view(job_id, owner=caller)


@router.get("/{job_id}", responses=problems(404))
async def get_job(job_id: JobIdPath, store: StoreDep, caller: CallerDep) -> JobView:
    """The job's state, each source's outcome and how long each stage took."""
    return await store.view(job_id, owner=caller)


ReportFormat = Literal["json", "md", "html", "pdf", "docx"]


@router.get(
    "/{job_id}/report",
    response_model=Report,
    responses={
        200: {
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                DOCX: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        **problems(404, 409),
    },
)
async def get_report(
    job_id: JobIdPath,
    store: StoreDep,
    caller: CallerDep,
    accept: Annotated[str, Header()] = "application/json",
    asked: Annotated[
        ReportFormat | None,
        Query(alias="format", description="the report as a file: overrides `Accept`"),
    ] = None,
) -> Report | Response:
    """The cited report: JSON; Markdown, self-contained HTML, PDF or DOCX when `format` or
    `Accept` asks for it (every `[n]` a link to its source)."""
    await store.job(job_id, owner=caller)
    report = await store.report(job_id)
    if report is None:
        view = await store.view(job_id, owner=caller)
        detail = f": {view.reason}" if view.reason else ""
        raise ReportNotReady(f"the job has no report; it is {view.state}{detail}")
    fmt = asked or wanted_format(accept)
    if fmt == "json":
        return report
    if fmt == "md":
        return PlainTextResponse(report.markdown, media_type=MEDIA_TYPES["md"])
    body = await asyncio.to_thread(export, report, fmt)  # PDF layout is CPU: off the loop
    kind = "inline" if fmt == "html" else "attachment"
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'{kind}; filename="brief-{job_id}.{fmt}"'},
    )


def wanted_format(accept: str) -> ReportFormat:
    """The format an `Accept` header ranks highest, if at least as high as JSON (which a bare
    `*/*` leaves the answer); ties go to the first of Markdown, HTML, PDF, DOCX."""
    by_media = {MEDIA_TYPES[fmt].split(";")[0]: fmt for fmt in FORMATS}
    media = preferred(accept, list(by_media))
    return by_media[media] if media is not None else "json"
