"""Dependencies of the API's routes: the wiring and the caller's identity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from brief.jobstore import JobStore
from brief.wiring import Wiring


def get_wiring(request: Request) -> Wiring:
    """The container's wiring, put on the app by `create_app`; tests override it."""
    wiring: Wiring = request.app.state.wiring()
    return wiring


WiringDep = Annotated[Wiring, Depends(get_wiring)]


async def get_store(wiring: WiringDep) -> JobStore:
    """The job store, on clients the container keeps between requests."""
    return await wiring.store()


def get_caller(request: Request) -> str:
    """Who is calling: API Gateway's authorizer identity when deployed, else "anonymous".

    A job belongs to its caller and is invisible to others (the API answers 404).
    """
    event: Any = request.scope.get("aws.event") or {}
    context = event.get("requestContext", {}) if isinstance(event, dict) else {}
    authorizer = context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    iam = authorizer.get("iam") or {}
    lambda_ctx = authorizer.get("lambda") or {}
    identity = claims.get("sub") or iam.get("userArn") or lambda_ctx.get("principalId")
    return str(identity) if identity else "anonymous"


StoreDep = Annotated[JobStore, Depends(get_store)]
CallerDep = Annotated[str, Depends(get_caller)]
