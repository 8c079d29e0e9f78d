"""Integration fixtures: moto in server mode on loopback (aiobotocore cannot use moto's
in-process mock), and aioboto3 clients pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioboto3
import pytest
from moto.server import ThreadedMotoServer

from brief_local.motoserver import prepare

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free loopback port."""
    prepare()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _session() -> Any:
    return aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[Any]:
    async with _session().client("s3", endpoint_url=moto_endpoint) as client:
        yield client


@pytest.fixture
async def sqs(moto_endpoint: str) -> AsyncIterator[Any]:
    async with _session().client("sqs", endpoint_url=moto_endpoint) as client:
        yield client


@pytest.fixture
async def bucket(s3: Any) -> str:
    """A new, empty bucket per test."""
    name = f"brief-test-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=name)
    return name
