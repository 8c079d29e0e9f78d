"""Uploads straight to S3: the API hands out a presigned POST, the bytes never pass Lambda.

A presigned POST (unlike a presigned PUT) carries a policy S3 enforces: the exact key, a
`content-length-range` up to the document size limit, and an expiry. The key holds 128
random bits, so an uploaded document is readable by its URI only to whoever was given it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from brief import keys
from brief.errors import PermanentError
from brief.models import Strict

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UploadGrant(Strict):
    """Where and how to upload one document, and the URI to cite it by afterwards."""

    uri: str
    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_in: int


class S3UploadGrants:
    """Grants uploads under `uploads/` in Brief's bucket."""

    def __init__(self, client: Any, bucket: str, *, max_bytes: int, expires_s: int = 900) -> None:
        self._s3 = client
        self._bucket = bucket
        self._max_bytes = max_bytes
        self._expires_s = expires_s

    async def grant(self, filename: str, content_type: str) -> UploadGrant:
        """A presigned POST for one document of at most `max_bytes`."""
        name = _SAFE_NAME.sub("-", filename.rsplit("/", 1)[-1]).strip(".-")[:100]
        if not name:
            raise PermanentError("the file name needs at least one letter or digit")
        key = keys.upload(secrets.token_hex(16), name)
        post = await self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self._max_bytes],
            ],
            ExpiresIn=self._expires_s,
        )
        return UploadGrant(
            uri=f"s3://{self._bucket}/{key}",
            url=post["url"],
            fields={k: str(v) for k, v in post["fields"].items()},
            max_bytes=self._max_bytes,
            expires_in=self._expires_s,
        )
