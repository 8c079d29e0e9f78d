"""`BlobStore` on S3 through aioboto3, with conditional writes for write-once keys."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from brief.errors import StorageUnavailable

log = logging.getLogger(__name__)

_CONFLICT_RETRIES = 5


class S3BlobStore:
    """Objects in one bucket; `put` uses `If-None-Match: *` so every key is written once, and
    `replace` (for caches only) overwrites."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        """Create `key`; False when it exists (412), the sign that the work was already done."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                await self._s3.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    IfNoneMatch="*",
                )
                return True
            except ClientError as exc:
                code = _code(exc)
                if code == "PreconditionFailed":
                    return False
                if code == "ConditionalRequestConflict" and attempt + 1 < _CONFLICT_RETRIES:
                    # Another conditional write to the same key is in flight; S3 asks us to retry.
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue
                raise _translate(exc, "put", key) from exc
            except BotoCoreError as exc:
                raise _translate(exc, "put", key) from exc
        raise StorageUnavailable(f"put {key}: conditional write kept conflicting")

    async def replace(
        self, key: str, body: bytes, *, content_type: str = "application/json"
    ) -> None:
        """Write `key` unconditionally (cache entries, which change over time)."""
        try:
            await self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "replace", key) from exc

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when the key does not exist."""
        tagged = await self.get_tagged(key)
        return None if tagged is None else tagged[0]

    async def get_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when the key does not exist."""
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
            async with response["Body"] as stream:
                body: bytes = await stream.read()
            return body, str(response["ETag"])
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return None
            raise _translate(exc, "get", key) from exc
        except BotoCoreError as exc:
            raise _translate(exc, "get", key) from exc

    async def swap(
        self, key: str, body: bytes, *, etag: str | None, content_type: str = "application/json"
    ) -> bool:
        """Write `key` with `If-Match: etag` (or `If-None-Match: *`); False when the object
        changed or appeared meanwhile (412), or another conditional write was in flight (409):
        the caller reads again either way."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            await self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, **condition
            )
            return True
        except ClientError as exc:
            if _code(exc) in {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"}:
                return False
            raise _translate(exc, "swap", key) from exc
        except BotoCoreError as exc:
            raise _translate(exc, "swap", key) from exc

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        """Every key under `prefix` in key order (S3 lists lexicographically)."""
        # A plain loop, not botocore's paginator: an abandoned paginator leaves an async
        # generator for the garbage collector to close on whatever loop is running then.
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        if after:
            kwargs["StartAfter"] = after
        keys: list[str] = []
        try:
            while True:
                page = await self._s3.list_objects_v2(**kwargs)
                keys.extend(item["Key"] for item in page.get("Contents", ()))
                if not page.get("IsTruncated"):
                    break
                kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "list", prefix) from exc
        return keys

    async def delete(self, key: str) -> None:
        """Remove `key`; S3 answers a delete of a missing key with success, as wanted here."""
        try:
            await self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "delete", key) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, verb: str, key: str) -> StorageUnavailable:
    """Every storage failure is retryable: dropping work on a storage error would lose it.

    A permanent misconfiguration (access denied, no bucket) retries until the message lands
    in the dead-letter queue, which marks the job failed with this reason.
    """
    reason = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    log.warning("s3 %s failed", verb, extra={"key": key, "error": reason})
    return StorageUnavailable(f"S3 {verb} {key} failed: {reason}")
