"""Each model adapter against the fake model server on loopback: the real wire formats,
streamed and whole, and the failures a provider really produces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig

from brief.llm.anthropic import AnthropicChat
from brief.llm.bedrock import BedrockChat
from brief.llm.chat import END, MAX_TOKENS, ChatModel
from brief.llm.errors import ModelRejected, ModelRetryable
from brief.llm.openai import OpenAIChat
from brief_testing.fake_models import FakeModelServer, Faults, count_tokens

SYSTEM = "You take notes."
PROMPT = (
    "Question: How does a swarm choose its new home?\n\n"
    "<source>\nScouts inspect cavities for days. A swarm chooses its new home when a quorum "
    "of scouts gathers at one site. The weather was mild that spring.\n</source>"
)
KEY = "sk-fake"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(api_keys={KEY}, context_tokens={"small": 64}) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(server: FakeModelServer) -> None:
    server.reset()
    server.faults = Faults()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def bedrock(server: FakeModelServer) -> AsyncIterator[Any]:
    session = aioboto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )
    config = AioConfig(retries={"total_max_attempts": 1})  # retries are the model layer's
    async with session.client("bedrock-runtime", endpoint_url=server.url, config=config) as client:
        yield client


def models(
    server: FakeModelServer,
    http: httpx.AsyncClient,
    bedrock: Any,
    *,
    stream: bool,
    model: str = "m",
) -> list[ChatModel]:
    return [
        OpenAIChat(
            http,
            model=model,
            context_tokens=8_192,
            base_url=server.url + "/v1",
            api_key=KEY,
            stream=stream,
        ),
        AnthropicChat(
            http, model=model, context_tokens=8_192, api_key=KEY, base_url=server.url, stream=stream
        ),
        BedrockChat(bedrock, model=model, context_tokens=8_192, stream=stream),
    ]


PROVIDERS = ["openai", "anthropic", "bedrock"]


@pytest.mark.parametrize("stream", [True, False])
async def test_every_provider_answers_and_reports_the_usage_the_server_billed(
    server: FakeModelServer, http: httpx.AsyncClient, bedrock: Any, stream: bool
) -> None:
    for chat in models(server, http, bedrock, stream=stream):
        pieces: list[str] = []

        async def on_token(piece: str, into: list[str] = pieces) -> None:
            into.append(piece)

        before = server.stats
        completion = await chat.complete(SYSTEM, PROMPT, max_tokens=200, on_token=on_token)
        after = server.stats
        assert "quorum of scouts" in completion.text, chat.name
        assert "".join(pieces) == completion.text
        assert len(pieces) > 1 if stream else len(pieces) == 1
        assert completion.input_tokens == after.input_tokens - before.input_tokens
        assert completion.output_tokens == after.output_tokens - before.output_tokens
        assert completion.output_tokens == count_tokens(completion.text)
        assert completion.stop_reason == END
        assert not completion.usage_estimated
    assert server.stats.by_api == {"openai": 1, "anthropic": 1, "bedrock": 1}


async def test_an_answer_cut_at_max_tokens_says_so(
    server: FakeModelServer, http: httpx.AsyncClient, bedrock: Any
) -> None:
    for chat in models(server, http, bedrock, stream=True):
        completion = await chat.complete(SYSTEM, PROMPT, max_tokens=5)
        assert completion.stop_reason == MAX_TOKENS, chat.name
        assert completion.output_tokens <= 5


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_429_is_retryable_with_the_servers_retry_after(
    server: FakeModelServer, http: httpx.AsyncClient, bedrock: Any, provider: str
) -> None:
    chat = models(server, http, bedrock, stream=True)[PROVIDERS.index(provider)]
    server.fail_next("429", retry_after_s=3)
    with pytest.raises(ModelRetryable) as raised:
        await chat.complete(SYSTEM, PROMPT, max_tokens=50)
    assert raised.value.throttled
    if provider != "bedrock":  # Bedrock sends no Retry-After
        assert raised.value.retry_after == 3.0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", ["500", "529", "cut"])
async def test_server_errors_overload_and_cut_streams_are_retryable(
    server: FakeModelServer, http: httpx.AsyncClient, bedrock: Any, provider: str, fault: Any
) -> None:
    chat = models(server, http, bedrock, stream=True)[PROVIDERS.index(provider)]
    server.fail_next(fault)
    with pytest.raises(ModelRetryable):
        await chat.complete(SYSTEM, PROMPT, max_tokens=50)
    # The connection pool recovers: the next call on the same client works.
    assert (await chat.complete(SYSTEM, PROMPT, max_tokens=50)).text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_prompt_over_the_context_window_is_refused_permanently(
    server: FakeModelServer, http: httpx.AsyncClient, bedrock: Any, provider: str
) -> None:
    chat = models(server, http, bedrock, stream=True, model="small")[PROVIDERS.index(provider)]
    with pytest.raises(ModelRejected, match="maximum context length is 64 tokens"):
        await chat.complete(SYSTEM, PROMPT, max_tokens=50)


async def test_a_wrong_key_is_refused_permanently(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    for chat in (
        OpenAIChat(
            http, model="m", context_tokens=8_192, base_url=server.url + "/v1", api_key="wrong"
        ),
        AnthropicChat(http, model="m", context_tokens=8_192, api_key="wrong", base_url=server.url),
    ):
        with pytest.raises(ModelRejected, match="401"):
            await chat.complete(SYSTEM, PROMPT, max_tokens=50)


async def test_an_unreachable_server_is_retryable(http: httpx.AsyncClient) -> None:
    chat = OpenAIChat(http, model="m", context_tokens=8_192, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ModelRetryable):
        await chat.complete(SYSTEM, PROMPT, max_tokens=50)


async def test_a_slow_answer_times_out_as_retryable(
    server: FakeModelServer, http: httpx.AsyncClient
) -> None:
    server.fail_next("slow")
    server.set_faults(slow_s=2.0)
    chat = OpenAIChat(
        http,
        model="m",
        context_tokens=8_192,
        base_url=server.url + "/v1",
        api_key=KEY,
        timeout_s=0.2,
    )
    with pytest.raises(ModelRetryable, match="in time"):
        await chat.complete(SYSTEM, PROMPT, max_tokens=50)
