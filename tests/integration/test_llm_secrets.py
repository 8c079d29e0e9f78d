"""API keys kept in SSM Parameter Store and Secrets Manager, resolved against moto's server,
and used for a real call to the fake model server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import httpx
import pytest

from brief.errors import RetryableError
from brief.llm.config import ModelConfig, StageConfig
from brief.llm.errors import ModelRejected
from brief.llm.factory import build_summarizer
from brief.llm.secrets import SecretError, SecretResolver
from brief.ports import SourceText
from brief_testing.fake_models import FakeModelServer

REGION = "us-east-1"


class Clients:
    """aioboto3 clients on moto, made on first use, counting the calls made through them."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.made: dict[str, Any] = {}
        self.calls = 0
        self._contexts: list[Any] = []

    async def __call__(self, service: str) -> Any:
        if service not in self.made:
            session = aioboto3.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
            )
            context = session.client(service, endpoint_url=self.endpoint)
            self._contexts.append(context)
            client = await context.__aenter__()
            client.meta.events.register("before-call.*.*", self._count)
            self.made[service] = client
        return self.made[service]

    def _count(self, **_: Any) -> None:
        self.calls += 1

    async def aclose(self) -> None:
        for context in self._contexts:
            await context.__aexit__(None, None, None)


@pytest.fixture
async def clients(moto_endpoint: str) -> AsyncIterator[Clients]:
    made = Clients(moto_endpoint)
    yield made
    await made.aclose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_an_ssm_secure_string_is_read_once_per_container(clients: Clients) -> None:
    name = "/brief/" + unique("openai-key")
    ssm = await clients("ssm")
    await ssm.put_parameter(Name=name, Value="sk-from-ssm", Type="SecureString")
    resolver = SecretResolver(clients)
    calls_before = clients.calls
    assert await resolver.resolve(f"ssm:{name}") == "sk-from-ssm"
    assert await resolver.resolve(f"ssm:{name}") == "sk-from-ssm"
    assert clients.calls - calls_before == 1  # a warm invocation makes no call


async def test_a_secrets_manager_secret_whole_or_one_json_key(clients: Clients) -> None:
    whole, keyed = unique("brief/plain"), unique("brief/keys")
    sm = await clients("secretsmanager")
    await sm.create_secret(Name=whole, SecretString="sk-plain")
    created = await sm.create_secret(
        Name=keyed, SecretString=json.dumps({"anthropic": "sk-ant", "openai": "sk-oai"})
    )
    resolver = SecretResolver(clients)
    assert await resolver.resolve(f"secretsmanager:{whole}") == "sk-plain"
    assert await resolver.resolve(f"secretsmanager:{keyed}#anthropic") == "sk-ant"
    assert await resolver.resolve(f"secretsmanager:{created['ARN']}#openai") == "sk-oai"


async def test_a_literal_key_needs_no_aws_call(clients: Clients) -> None:
    resolver = SecretResolver(clients)
    assert await resolver.resolve("sk-literal") == "sk-literal"
    assert await resolver.resolve(None) is None
    assert clients.made == {}


@pytest.mark.parametrize(
    ("reference", "match"),
    [
        ("ssm:/brief/never-created", "ParameterNotFound"),
        ("secretsmanager:brief/never-created", "ResourceNotFoundException"),
        ("ssm:", "names no parameter"),
    ],
)
async def test_a_missing_secret_is_a_permanent_error_naming_the_reference(
    clients: Clients, reference: str, match: str
) -> None:
    with pytest.raises(SecretError, match=match) as raised:
        await SecretResolver(clients).resolve(reference)
    assert reference in str(raised.value)
    assert not isinstance(raised.value, RetryableError)


async def test_a_json_key_that_is_not_there_is_a_permanent_error(clients: Clients) -> None:
    name = unique("brief/keys")
    await (await clients("secretsmanager")).create_secret(
        Name=name, SecretString=json.dumps({"openai": "sk"})
    )
    with pytest.raises(SecretError, match="no key 'anthropic'"):
        await SecretResolver(clients).resolve(f"secretsmanager:{name}#anthropic")


async def test_the_key_from_ssm_authenticates_the_model_calls(clients: Clients) -> None:
    name = "/brief/" + unique("model-key")
    await (await clients("ssm")).put_parameter(Name=name, Value="sk-from-ssm", Type="SecureString")
    question = "How do scouts decide?"
    source = SourceText(1, "Notes", "https://bees.test/1", "Scouts decide by dancing for sites.")
    with FakeModelServer(api_keys={"sk-from-ssm"}) as server:
        async with httpx.AsyncClient() as http:
            for key, works in ((f"ssm:{name}", True), ("sk-wrong", False)):
                config = ModelConfig(
                    summarize=StageConfig(
                        provider="openai", model="m", base_url=server.url + "/v1", api_key=key
                    )
                )
                brief = await build_summarizer(config, http=http, secret_clients=clients)
                if works:
                    assert "dancing" in (await brief.summarize(question, source)).text
                else:
                    with pytest.raises(ModelRejected, match="401"):
                        await brief.summarize(question, source)
