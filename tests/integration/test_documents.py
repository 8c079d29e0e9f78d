"""S3DocumentStore against moto's server: what a user may read, and why a read fails."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from fpdf import FPDF

from brief.adapters.documents import S3DocumentStore, S3Place
from brief.errors import SourceError
from brief.extraction import extract

LIMIT = 10_000


@pytest.fixture
async def store(s3: Any, bucket: str) -> S3DocumentStore:
    await s3.put_object(
        Bucket=bucket,
        Key="docs/notes/swarms.txt",
        Body=b"Scouts dance for the best cavity.",
        ContentType="text/plain; charset=utf-8",
    )
    return S3DocumentStore(s3, allowed=[f"s3://{bucket}/docs/"], max_bytes=LIMIT)


async def reason(store: S3DocumentStore, uri: str) -> str:
    with pytest.raises(SourceError) as caught:
        await store.read(uri)
    return caught.value.reason


async def test_a_document_in_an_allowed_place_is_read_with_its_type(
    store: S3DocumentStore, bucket: str
) -> None:
    uri = f"s3://{bucket}/docs/notes/swarms.txt"

    page = await store.read(uri)

    assert (page.url, page.final_url) == (uri, uri)
    assert page.body == b"Scouts dance for the best cavity."
    assert page.content_type == "text/plain; charset=utf-8"
    assert page.elapsed_ms >= 0


async def test_a_pdf_uploaded_without_a_type_still_yields_its_text(s3: Any, bucket: str) -> None:
    doc = FPDF()
    doc.set_title("Quorum sensing in swarms")
    doc.add_page()
    doc.set_font("Helvetica", size=11)
    doc.multi_cell(0, 6, "A quorum of about fifteen scouts at one site triggers liftoff.")
    await s3.put_object(Bucket=bucket, Key="docs/quorum.pdf", Body=bytes(doc.output()))
    store = S3DocumentStore(s3, allowed=[f"s3://{bucket}/"], max_bytes=LIMIT)

    page = await store.read(f"s3://{bucket}/docs/quorum.pdf")
    text = extract(page.body, page.content_type, page.final_url)

    assert page.content_type == "binary/octet-stream"  # S3's default: the bytes decide
    assert text.title == "Quorum sensing in swarms"
    assert text.text == "A quorum of about fifteen scouts at one site triggers liftoff."


async def test_an_empty_document_is_read_as_empty(
    s3: Any, bucket: str, store: S3DocumentStore
) -> None:
    await s3.put_object(Bucket=bucket, Key="docs/empty.txt", Body=b"")

    assert (await store.read(f"s3://{bucket}/docs/empty.txt")).body == b""


@pytest.mark.parametrize(
    "where",
    [
        "other-bucket/docs/notes/swarms.txt",
        "{bucket}/private/swarms.txt",
        "{bucket}/docs-old/x.txt",
    ],
    ids=["other-bucket", "other-prefix", "lookalike-prefix"],
)
async def test_a_document_outside_the_allowed_places_is_refused_naming_them(
    store: S3DocumentStore, bucket: str, where: str
) -> None:
    uri = "s3://" + where.format(bucket=bucket)

    assert await reason(store, uri) == (
        f"{uri} is outside the places Brief may read (s3://{bucket}/docs/)"
    )


async def test_with_no_places_configured_nothing_may_be_read(s3: Any, bucket: str) -> None:
    store = S3DocumentStore(s3, allowed=[], max_bytes=LIMIT)
    uri = f"s3://{bucket}/docs/notes/swarms.txt"

    assert await reason(store, uri) == (
        f"{uri} is outside the places Brief may read (none are configured)"
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://{bucket}.s3.amazonaws.com/docs/a.txt",
            "'{uri}' is not an s3://bucket/key address",
        ),
        ("S3://{bucket}/docs/a.txt", "'{uri}' is not an s3://bucket/key address"),
        ("/docs/a.txt", "'{uri}' is not an s3://bucket/key address"),
        ("s3://Bad_Bucket/docs/a.txt", "'Bad_Bucket' is not a valid bucket name"),
        ("s3://10.0.0.1/docs/a.txt", "'10.0.0.1' is not a valid bucket name"),
        ("s3://{bucket}", "{uri} names a bucket, not a document"),
        ("s3://{bucket}/", "{uri} names a bucket, not a document"),
        ("s3://{bucket}/docs/notes/", "{uri} names a folder, not a document"),
        ("s3://{bucket}/docs/../secret.txt", "{uri} is not a valid document key"),
        ("s3://{bucket}/docs/./notes/swarms.txt", "{uri} is not a valid document key"),
        ("s3://{bucket}/docs//swarms.txt", "{uri} is not a valid document key"),
        ("s3://{bucket}/docs\\..\\secret.txt", "{uri} is not a valid document key"),
        ("s3://{bucket}/docs/a\nb.txt", "{uri} is not a valid document key"),
        ("s3://{bucket}/docs/" + "k" * 1100, "{clipped} is not a valid document key"),
    ],
)
async def test_an_address_that_is_not_a_plain_s3_key_is_refused_before_any_request(
    bucket: str, uri: str, expected: str
) -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"S3 was called: {name}")

    uri = uri.format(bucket=bucket)
    store = S3DocumentStore(NoCalls(), allowed=[f"s3://{bucket}/"], max_bytes=LIMIT)

    assert await reason(store, uri) == expected.format(uri=uri, clipped=uri[:199] + "…")


async def test_a_missing_document_or_bucket_is_no_such_document(
    s3: Any, store: S3DocumentStore, bucket: str
) -> None:
    assert await reason(store, f"s3://{bucket}/docs/none.txt") == "no such document"
    nowhere = S3DocumentStore(s3, allowed=["s3://brief-no-such-bucket/"], max_bytes=LIMIT)
    assert await reason(nowhere, "s3://brief-no-such-bucket/a.txt") == "no such document"


async def test_a_document_over_the_limit_is_refused_before_it_is_downloaded(
    s3: Any, bucket: str, store: S3DocumentStore
) -> None:
    await s3.put_object(Bucket=bucket, Key="docs/exact.txt", Body=b"x" * LIMIT)
    await s3.put_object(Bucket=bucket, Key="docs/big.txt", Body=b"x" * (LIMIT + 1))

    assert len((await store.read(f"s3://{bucket}/docs/exact.txt")).body) == LIMIT
    assert await reason(store, f"s3://{bucket}/docs/big.txt") == (
        "too large: 10,001 bytes (the limit is 10,000)"
    )


class Rewriting:
    """An S3 client that lets another writer replace the object between HEAD and GET."""

    def __init__(self, s3: Any, body: bytes) -> None:
        self._s3 = s3
        self._body = body

    async def head_object(self, **kwargs: Any) -> Any:
        head = await self._s3.head_object(**kwargs)
        await self._s3.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=self._body)
        return head

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


async def test_a_document_replaced_while_being_read_is_not_mixed_up(s3: Any, bucket: str) -> None:
    await s3.put_object(Bucket=bucket, Key="docs/live.txt", Body=b"small")
    store = S3DocumentStore(
        Rewriting(s3, b"y" * (LIMIT * 3)), allowed=[f"s3://{bucket}/"], max_bytes=LIMIT
    )

    assert await reason(store, f"s3://{bucket}/docs/live.txt") == (
        "the document changed while Brief was reading it"
    )


class Refusing:
    """An S3 client whose every call fails with one error code, as IAM or S3 would."""

    def __init__(self, code: str) -> None:
        self._code = code

    async def head_object(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": self._code, "Message": "no"}}, "HeadObject")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "Brief may not read that document"),
        ("403", "Brief may not read that document"),
        ("404", "no such document"),
        ("SlowDown", "the document store failed (SlowDown)"),
        (
            "InvalidObjectState",
            "the document is archived and must be restored before Brief can read it",
        ),
    ],
)
async def test_s3_refusals_become_reasons(code: str, expected: str) -> None:
    store = S3DocumentStore(Refusing(code), allowed=["s3://bees/"], max_bytes=LIMIT)

    assert await reason(store, "s3://bees/a.txt") == expected


@pytest.mark.parametrize(
    ("place", "bucket", "prefix"),
    [
        ("s3://bees", "bees", ""),
        ("s3://bees/", "bees", ""),
        ("s3://bees/docs", "bees", "docs/"),
        ("s3://bees/docs/2024/", "bees", "docs/2024/"),
    ],
)
def test_places_are_buckets_or_folders(place: str, bucket: str, prefix: str) -> None:
    assert S3Place.parse(place) == S3Place(bucket, prefix)


@pytest.mark.parametrize("place", ["https://bees/docs/", "s3://Bees/", "s3://bees/docs/../x/"])
def test_a_misconfigured_place_fails_at_startup(place: str) -> None:
    with pytest.raises(ValueError, match="not a place Brief can read under"):
        S3DocumentStore(object(), allowed=[place], max_bytes=LIMIT)
