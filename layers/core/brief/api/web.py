"""The web page: ask a question, watch it being researched, read the cited report.

One page and its script and style, served by the API itself from package data
(`brief/api/static/`): no build step, nothing from another origin. The page talks to the
same API as every other client, with the caller's key when one is set. A strict Content
Security Policy allows only this origin's script, style and connections, and no inline
script, so text from a source can never run as code even if it slipped past the renderer.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from fastapi.responses import Response

router = APIRouter(tags=["web"], include_in_schema=False)

# What the page may load, by file name; nothing else under static/ is served.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@functools.cache
def asset(name: str) -> tuple[bytes, str]:
    """An asset's bytes and its ETag, read once per container."""
    body = resources.files("brief.api").joinpath("static", name).read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:20]}"'


def _serve(name: str, if_none_match: str | None) -> Response:
    body, etag = asset(name)
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",  # revalidate: a new release shows at once
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type=ASSETS[name], headers=headers)


@router.get("/")
async def index(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The page."""
    return _serve("index.html", if_none_match)


@router.get("/static/{name}")
async def static(name: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The page's script, style and icon."""
    if name not in ASSETS or name == "index.html":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "There is no such file.")
    return _serve(name, if_none_match)
