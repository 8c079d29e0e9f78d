"""The uploads resource: a presigned POST for a document to research."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from pydantic import Field

from brief.adapters.uploads import UploadGrant
from brief.api.deps import WiringDep
from brief.api.problems import problems
from brief.models import Strict

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=problems(422, 503))


class UploadRequest(Strict):
    """The document to upload: its name and type (the bytes go straight to S3)."""

    # The stored name keeps letters, digits, '.', '_' and '-' of the last path segment, and
    # must keep one letter, digit or '_': say so in the schema, not as a 400 after the fact.
    filename: Annotated[str, Field(min_length=1, max_length=200, pattern=r"[A-Za-z0-9_][^/]*$")]
    content_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)] = (
        "application/octet-stream"
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(400, 413))
async def create_upload(request: UploadRequest, wiring: WiringDep) -> UploadGrant:
    """Upload a document to S3 with a form POST of `fields` plus `file` to `url`, then use
    `uri` as a source of a job. The grant expires after `expires_in` seconds."""
    uploads = await wiring.uploads()
    return await uploads.grant(request.filename, request.content_type)
