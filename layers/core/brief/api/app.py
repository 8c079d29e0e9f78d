"""The FastAPI application and its error mapping (problem+json, never a bare 500)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from brief.api import batches, events, jobs, uploads, web
from brief.api.deps import get_caller
from brief.api.docs import serve_docs
from brief.api.limits import BodyLimit
from brief.api.problems import PROBLEM, TITLES, problem, problems, schemas
from brief.errors import (
    BatchNotFound,
    JobFinished,
    JobNotFound,
    PermanentError,
    ReportNotReady,
    RetryableError,
)
from brief.wiring import Wiring

log = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "PROBLEM", "BriefAPI", "create_app", "problem"]

MAX_BODY_BYTES = 6_000_000


class BriefAPI(FastAPI):
    """FastAPI, with the problem document's schema among the published components (routes
    refer to it for every error status they declare)."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI schema, built once."""
        if self.openapi_schema is None:
            schema = super().openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas())
        return self.openapi_schema or {}


def create_app(wiring: Callable[[], Wiring]) -> FastAPI:
    """The API; `wiring` returns the container's wiring (built lazily, reused while warm)."""
    app = BriefAPI(
        title="Brief",
        summary="A question and sources in, a cited research report out.",
        version="0.1.0",
        docs_url=None,  # serve_docs: from the package, not a CDN
        redoc_url=None,  # ReDoc's page loads from a CDN: not served
    )
    serve_docs(app)
    app.state.wiring = wiring
    app.include_router(jobs.router)
    app.include_router(events.router)
    # Uploads name no job, but with API keys configured only a caller with a key may upload.
    app.include_router(uploads.router, dependencies=[Depends(get_caller)], responses=problems(401))
    app.include_router(batches.router)
    app.include_router(web.router)

    # A batch of 1,000 requests fits; API Gateway's own limit is 10 MB.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness: the function is up (it does not touch S3 or SQS)."""
        return {"status": "ok"}

    app.add_exception_handler(JobNotFound, _not_found)
    app.add_exception_handler(ReportNotReady, _not_ready)
    app.add_exception_handler(JobFinished, _finished)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RetryableError, _unavailable)
    app.add_exception_handler(PermanentError, _permanent)
    return app


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, BatchNotFound):
        return problem(404, "Batch not found", "There is no batch with that id for this caller.")
    return problem(404, "Job not found", "There is no job with that id for this caller.")


async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
    return problem(409, "Report not ready", str(exc))


async def _finished(request: Request, exc: Exception) -> JSONResponse:
    return problem(409, "Job already ended", str(exc))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": "body" if e["type"] == "json_invalid" else _field(e["loc"]),
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid request", detail, errors=errors)


def _field(loc: Sequence[object]) -> str:
    """`("body", "sources", 0, "uri")` → `sources.0.uri`; a query or path name as it is."""
    return ".".join(str(p) for p in loc[1:]) or str(loc[0] if loc else "body")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = TITLES.get(exc.status_code, "Request failed")
    response = problem(exc.status_code, title, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("service unavailable: %s", exc)
    response = problem(503, "Temporarily unavailable", "Storage is busy; try again shortly.")
    response.headers["Retry-After"] = "1"
    return response


async def _permanent(request: Request, exc: Exception) -> JSONResponse:
    return problem(400, "Request cannot be processed", str(exc))
