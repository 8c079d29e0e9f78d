"""`DocumentStore` on S3: a user's `s3://bucket/key`, read only inside configured places.

A document address comes from a user, so it is parsed strictly (no other scheme, no empty,
`.` or `..` segments, no folder) and must fall under one of the configured places
(`s3://bucket/` or `s3://bucket/prefix/`). The object is sized with HEAD before any byte is
read, then fetched with a Range that cannot pass the limit, pinned to the ETag it was sized
at. The content type is the object's own; extraction sniffs the bytes anyway.

Retries for throttling, 5xx and timeouts are the S3 client's (standard mode), not repeated here.
For "no such document" to be told apart from "not allowed", Brief's role needs
`s3:ListBucket` on the places as well as `s3:GetObject`: without it S3 answers 403 for a
missing key.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from brief.errors import SourceError
from brief.ports import FetchedPage

__all__ = ["S3DocumentStore", "S3Place"]

log = logging.getLogger(__name__)

NO_SUCH_DOCUMENT = "no such document"
NOT_ALLOWED = "Brief may not read that document"

_SCHEME = "s3://"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_MAX_KEY_BYTES = 1_024
_MAX_URI_IN_REASON = 200
_CHUNK = 256 * 1024
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_DENIED = frozenset({"403", "AccessDenied", "Forbidden", "AllAccessDisabled"})
_CHANGED = frozenset({"412", "PreconditionFailed"})


@dataclass(frozen=True, slots=True)
class S3Place:
    """A bucket, or a folder (key prefix ending in `/`) in one, that Brief may read under."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, place: str) -> S3Place:
        """`s3://bucket/` or `s3://bucket/prefix/` (the trailing slash is implied)."""
        try:
            bucket, key = _split(place, allow_empty_key=True)
        except SourceError as exc:
            raise ValueError(f"not a place Brief can read under: {exc.reason}") from exc
        if key and not key.endswith("/"):
            key += "/"
        return cls(bucket, key)

    def holds(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def __str__(self) -> str:
        return f"{_SCHEME}{self.bucket}/{self.prefix}"


class S3DocumentStore:
    """Reads documents from S3 with an aioboto3 client, within `allowed` places and size."""

    def __init__(self, client: Any, *, allowed: Sequence[str], max_bytes: int) -> None:
        self._s3 = client
        self._places = [S3Place.parse(place) for place in allowed]
        self._max_bytes = max_bytes

    async def read(self, uri: str) -> FetchedPage:
        """The document's bytes and content type; SourceError with a reason a user can act on."""
        started = time.perf_counter()
        bucket, key = _split(uri)
        if not any(place.holds(bucket, key) for place in self._places):
            places = ", ".join(map(str, self._places)) or "none are configured"
            raise SourceError(f"{_clip(uri)} is outside the places Brief may read ({places})")
        try:
            head = await self._s3.head_object(Bucket=bucket, Key=key)
            size = int(head.get("ContentLength", 0))
            if size > self._max_bytes:
                raise SourceError(f"too large: {size:,} bytes (the limit is {self._max_bytes:,})")
            content_type, body = await self._get(bucket, key, size, head.get("ETag"))
        except ClientError as exc:
            raise _translate(exc) from exc
        except BotoCoreError as exc:  # endpoint unreachable, timeouts after the client's retries
            log.warning("s3 document read failed", extra={"error": type(exc).__name__})
            raise SourceError(f"could not reach the document store ({type(exc).__name__})") from exc
        elapsed = int((time.perf_counter() - started) * 1000)
        return FetchedPage(uri, uri, content_type or head.get("ContentType"), body, elapsed)

    async def _get(
        self, bucket: str, key: str, size: int, etag: str | None
    ) -> tuple[str | None, bytes]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = etag  # the object HEAD measured, not one written since
        if size:
            # One byte past the limit: an object that grew since HEAD shows itself.
            kwargs["Range"] = f"bytes=0-{self._max_bytes}"
        response = await self._s3.get_object(**kwargs)
        chunks: list[bytes] = []
        total = 0
        body = response["Body"]
        async with body:  # releases the connection, however the read ends
            async for chunk in body.iter_chunks(_CHUNK):
                total += len(chunk)
                if total > self._max_bytes:
                    raise SourceError(f"too large: more than {self._max_bytes:,} bytes")
                chunks.append(chunk)
        return response.get("ContentType"), b"".join(chunks)


def _split(uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
    """Bucket and key of `s3://bucket/key`, or SourceError saying what is wrong with it."""
    if not uri.startswith(_SCHEME):
        raise SourceError(f"{_clip(uri)!r} is not an s3://bucket/key address")
    bucket, _, key = uri[len(_SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS.fullmatch(bucket):
        raise SourceError(f"{_clip(bucket)!r} is not a valid bucket name")
    if not key and not allow_empty_key:
        raise SourceError(f"{_clip(uri)} names a bucket, not a document")
    if key.endswith("/") and not allow_empty_key:
        raise SourceError(f"{_clip(uri)} names a folder, not a document")
    segments = key.rstrip("/").split("/") if key else []
    if (
        any(segment in {"", ".", ".."} for segment in segments)
        or _BAD_KEY_CHARS.search(key)
        or len(key.encode()) > _MAX_KEY_BYTES
    ):
        raise SourceError(f"{_clip(uri)} is not a valid document key")
    return bucket, key


def _translate(exc: ClientError) -> SourceError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in _MISSING:
        return SourceError(NO_SUCH_DOCUMENT)
    if code in _DENIED:
        return SourceError(NOT_ALLOWED)
    if code in _CHANGED:
        return SourceError("the document changed while Brief was reading it")
    if code == "InvalidObjectState":
        return SourceError("the document is archived and must be restored before Brief can read it")
    log.warning("s3 document read failed", extra={"error": code})
    return SourceError(f"the document store failed ({code or 'unknown error'})")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_URI_IN_REASON else text[: _MAX_URI_IN_REASON - 1] + "…"
