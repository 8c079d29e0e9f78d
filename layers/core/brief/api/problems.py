"""Error answers: RFC 9457 problem documents, and how each route declares the ones it gives.

Every error the API answers is `application/problem+json`, and every status a route can
answer is in its OpenAPI operation with that schema, so a generated client (or a fuzzer)
finds no undocumented status and no body that differs from its description.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM = "application/problem+json"

TITLES: dict[int, str] = {
    400: "Request cannot be processed",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid request",
    500: "Internal error",
    503: "Temporarily unavailable",
}

# What each status means on the routes that declare it (the description in the schema).
_MEANINGS: dict[int, str] = {
    400: "The body cannot be read (not JSON, or not UTF-8), an event cursor names no event of "
    "the job, or the request cannot be processed.",
    401: "No valid API key (see `WWW-Authenticate`).",
    404: "No such job or batch for this caller (another caller's is not found either).",
    409: "The job is not in a state that allows this (no report yet, or already ended).",
    413: "The body is larger than the API accepts.",
    422: "A parameter or the body is invalid; `errors` names each field.",
    503: "Storage is busy; retry after `Retry-After` seconds.",
}


class FieldError(BaseModel):
    """One invalid field of a 422: where it is and what is wrong with it."""

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document: every error answer of the API."""

    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="Each invalid field (422 only)."
    )


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer each of `statuses` with a problem."""
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def schemas() -> dict[str, Any]:
    """`Problem` and the models it refers to, as OpenAPI component schemas."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}
