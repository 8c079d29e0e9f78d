"""The fake model server itself: its faults are injected as configured, reproducibly, and it
counts what tests and benchmarks assert on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from brief_testing.fake_models import FakeModelServer, Faults, answer_for

BODY = {
    "model": "m",
    "messages": [
        {
            "role": "user",
            "content": "Question: why?\n\n<source>\nBees dance because scouts vote.\n</source>",
        }
    ],
    "max_tokens": 50,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(latency_s={"slow-model": 0.2}) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(server: FakeModelServer) -> None:
    server.reset()
    server.faults = Faults()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=300)) as client:
        yield client


async def statuses(http: httpx.AsyncClient, url: str, count: int) -> list[int]:
    responses = await asyncio.gather(*(http.post(url, json=BODY) for _ in range(count)))
    return [r.status_code for r in responses]


async def test_a_fraction_of_requests_fails_the_same_way_for_the_same_seed(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    url = server.url + "/v1/chat/completions"
    runs = []
    for _ in range(2):
        server.faults = Faults(rate_limit=0.3, server_error=0.1, seed=7)
        runs.append([(await http.post(url, json=BODY)).status_code for _ in range(100)])
    assert runs[0] == runs[1]
    counts = {s: runs[0].count(s) for s in set(runs[0])}
    assert 15 <= counts[429] <= 45
    assert 2 <= counts[500] <= 20
    assert server.stats.statuses[429] == 2 * counts[429]


async def test_429s_carry_retry_after_in_each_api_shape(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.fail_next("429", 2, retry_after_s=1.5)
    openai = await http.post(server.url + "/v1/chat/completions", json=BODY)
    anthropic = await http.post(
        server.url + "/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"}
    )
    assert openai.status_code == anthropic.status_code == 429
    assert openai.headers["retry-after"] == anthropic.headers["retry-after"] == "1.500"
    assert openai.json()["error"]["type"] == "rate_limit_error"
    assert anthropic.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached; slow down"},
    }


async def test_too_many_requests_at_once_earn_429s(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.faults = Faults(max_concurrent=10)
    one_at_a_time = [
        (await http.post(server.url + "/v1/chat/completions", json=BODY)).status_code
        for _ in range(20)
    ]
    assert one_at_a_time == [200] * 20
    # Sixty at once, each answered after a second: ten are served, the rest told to wait.
    responses = await asyncio.gather(
        *(
            http.post(
                server.url + "/v1/chat/completions", json=BODY, headers={"x-fake-latency": "1.0"}
            )
            for _ in range(60)
        )
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) >= 10
    assert codes.count(429) >= 10
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)


async def test_many_concurrent_requests_are_served_concurrently(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    body = {**BODY, "stream": True}
    slow = {"x-fake-latency": "1.0"}
    url = server.url + "/v1/chat/completions"
    started = time.perf_counter()
    responses = await asyncio.gather(*(http.post(url, json=body, headers=slow) for _ in range(200)))
    elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in responses)
    assert all(r.text.endswith("data: [DONE]\n\n") for r in responses)
    assert elapsed < 20.0  # one after another: 200 s
    stats = server.stats
    assert stats.max_in_flight >= 50
    assert stats.completed == 200
    assert stats.in_flight == 0


async def test_latency_can_be_asked_for_per_request(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    started = time.perf_counter()
    await http.post(
        server.url + "/v1/chat/completions", json=BODY, headers={"x-fake-latency": "0.3"}
    )
    assert time.perf_counter() - started >= 0.3


async def test_faults_change_at_run_time_over_http(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    response = await http.post(server.url + "/_fake/faults", json={"server_error": 1.0})
    assert response.json()["server_error"] == 1.0
    assert (await http.post(server.url + "/v1/chat/completions", json=BODY)).status_code == 500
    await http.post(server.url + "/_fake/faults", json={"server_error": 0.0})
    assert (await http.post(server.url + "/v1/chat/completions", json=BODY)).status_code == 200
    stats = (await http.get(server.url + "/_fake/stats")).json()
    assert stats["statuses"] == {"500": 1, "200": 1}
    refused = await http.post(server.url + "/_fake/faults", json={"meteor": 1})
    assert refused.status_code == 400


async def test_cut_streams_end_without_their_terminator(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.fail_next("cut")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(server.url + "/v1/chat/completions", json={**BODY, "stream": True})
    assert server.stats.cut == 1
    assert server.stats.completed == 0  # a cut answer is not billed


async def test_requests_the_real_apis_refuse_are_refused(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    missing_version = await http.post(server.url + "/v1/messages", json=BODY)
    assert missing_version.status_code == 400
    assert missing_version.json()["error"]["type"] == "invalid_request_error"
    assert (await http.post(server.url + "/v1/chat/completions", content=b"{")).status_code == 400
    assert (await http.get(server.url + "/v1/models")).status_code == 404


def test_answers_pick_the_sentences_that_match_the_question_and_keep_their_markers() -> None:
    prompt = (
        "Question: How do scouts decide?\n\n<notes>\n[1] Swarm notes (https://a.test)\n"
        "Scouts decide by voting with dances. The weather was mild.\n\n"
        "[2] More notes (https://b.test)\nA quorum of scouts decides the site. Lunch was late.\n"
        "Queens rest while scouts decide [1][2].\n</notes>"
    )
    text, tokens, truncated = answer_for("system", prompt, max_tokens=200, sentences=3)
    assert text == (
        "Scouts decide by voting with dances [1]. A quorum of scouts decides the site [2]. "
        "Queens rest while scouts decide [1][2]."
    )
    assert not truncated
    assert tokens > 20
