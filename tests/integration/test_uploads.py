"""Uploads through a presigned POST land in S3 under the granted key, within the size limit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from brief.adapters.uploads import S3UploadGrants
from brief.errors import PermanentError


async def post(grant_url: str, fields: dict[str, str], body: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(grant_url, data=fields, files={"file": ("doc", body)})


async def test_a_granted_upload_lands_at_its_uri(s3: Any, bucket: str) -> None:
    grants = S3UploadGrants(s3, bucket, max_bytes=1_000)
    grant = await grants.grant("My Paper (final).pdf", "application/pdf")
    assert grant.uri.startswith(f"s3://{bucket}/uploads/")
    assert grant.uri.endswith("/My-Paper-final-.pdf")
    response = await post(grant.url, grant.fields, b"%PDF-1.4 tiny")
    assert response.status_code in (200, 204), response.text
    key = grant.uri.removeprefix(f"s3://{bucket}/")
    stored = await s3.get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "application/pdf"
    assert await stored["Body"].read() == b"%PDF-1.4 tiny"


async def test_each_grant_is_a_new_unguessable_key(s3: Any, bucket: str) -> None:
    grants = S3UploadGrants(s3, bucket, max_bytes=1_000)
    first, second = [await grants.grant("a.txt", "text/plain") for _ in range(2)]
    assert first.uri != second.uri
    assert len(first.uri.split("/")[-2]) == 32


async def test_a_name_with_nothing_usable_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(PermanentError, match="file name"):
        await S3UploadGrants(s3, bucket, max_bytes=10).grant("../..", "text/plain")
