"""Measures, in a process of its own, the memory a gzip bomb costs the fetcher.

tracemalloc counts every thread of a process, so inside the test session another test's
leftover server thread could add its own allocations to the peak. Here nothing runs but one
PageServer and one fetch. Prints `{"reason": ..., "peak": ...}` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc

import httpx

from brief.egress import EgressPolicy, guarded_client
from brief.errors import SourceError
from brief.retrieval import FetchLimits, HttpFetcher
from brief_testing.pages import PageServer, gzip_bomb

LOOPBACK = "127.0.0.1"


async def measure(limit: int, inflated: int, warm_path: str) -> dict[str, object]:
    """Fetch the bomb once the connection is warm; the peak covers only the bomb's fetch."""
    server = PageServer().start()
    try:
        async with guarded_client(
            EgressPolicy([LOOPBACK]),
            timeout=httpx.Timeout(5.0),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            headers={"User-Agent": "BriefTest"},
        ) as client:
            fetcher = HttpFetcher(client, EgressPolicy([LOOPBACK]), FetchLimits(max_bytes=limit))
            await fetcher.fetch(f"{server.url}/{warm_path}")
            gzip_bomb(inflated)  # the server's bytes, built (and cached) before measuring
            tracemalloc.start()
            try:
                await fetcher.fetch(f"{server.url}/gzip-bomb?size={inflated}")
                reason = "fetched"
            except SourceError as refused:
                reason = refused.reason
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        server.stop()
    return {"reason": reason, "peak": peak}


if __name__ == "__main__":
    limit, inflated, warm_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(measure(limit, inflated, warm_path))))
