"""The configured summarizer: extractive by default, models by settings, mixes allowed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from brief.extractive import ExtractiveSummarizer
from brief.llm.config import ModelConfig, StageConfig
from brief.llm.factory import StagedSummarizer, build_summarizer
from brief.llm.prompts import PROMPT_VERSION
from brief.llm.summarizer import LLMSummarizer


def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))


async def test_the_default_is_the_offline_extractive_summarizer() -> None:
    def no_client() -> httpx.AsyncClient:
        raise AssertionError("an extractive summarizer needs no HTTP client")

    built = await build_summarizer(ModelConfig(), http=no_client)
    assert isinstance(built, ExtractiveSummarizer)


async def test_the_extractive_summarizer_given_is_the_one_used() -> None:
    mine = ExtractiveSummarizer(sentences=2)
    assert await build_summarizer(ModelConfig(), extractive=mine) is mine


async def test_one_model_for_both_stages() -> None:
    config = ModelConfig(
        summarize=StageConfig(provider="openai", model="gpt-4o-mini", api_key="sk-x"),
        prices='{"openai:gpt-4o-mini": [0.15, 0.6]}',
    )
    built = await build_summarizer(config, http=http())
    assert isinstance(built, LLMSummarizer)
    assert built.name.startswith(f"openai:gpt-4o-mini+openai:gpt-4o-mini@{PROMPT_VERSION}.")


async def test_different_models_per_stage() -> None:
    config = ModelConfig(
        summarize=StageConfig(provider="openai", model="llama3", base_url="http://ollama:11434/v1"),
        combine=StageConfig(provider="anthropic", model="claude-x", api_key="k"),
    )
    made: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:
        made.append(http())
        return made[-1]

    built = await build_summarizer(config, http=client)
    assert built.name.startswith(f"openai:llama3+anthropic:claude-x@{PROMPT_VERSION}.")
    assert len(made) == 1  # one client for both models


async def test_extractive_summaries_with_a_model_writing_the_report() -> None:
    config = ModelConfig(combine=StageConfig(provider="anthropic", model="claude-x", api_key="k"))
    built = await build_summarizer(config, http=http())
    assert isinstance(built, StagedSummarizer)
    assert built.name.startswith("extractive")
    assert f"|anthropic:claude-x+anthropic:claude-x@{PROMPT_VERSION}." in built.name


async def test_bedrock_uses_the_client_factory_it_is_given() -> None:
    made: list[str] = []

    async def factory() -> Any:
        made.append("bedrock-runtime")
        return object()

    config = ModelConfig(summarize=StageConfig(provider="bedrock", model="anthropic.claude-x-v1:0"))
    built = await build_summarizer(config, bedrock_client_factory=factory)
    assert built.name.startswith("bedrock:anthropic.claude-x-v1:0+bedrock:")
    assert made == ["bedrock-runtime"]  # one client for both stages


async def test_a_key_reference_needs_aws_clients() -> None:
    config = ModelConfig(
        summarize=StageConfig(provider="openai", model="m", api_key="ssm:/brief/key")
    )
    with pytest.raises(ValueError, match="AWS clients"):
        await build_summarizer(config, http=http())


async def test_http_providers_need_an_http_client() -> None:
    config = ModelConfig(summarize=StageConfig(provider="anthropic", model="m", api_key="k"))
    with pytest.raises(ValueError, match="httpx"):
        await build_summarizer(config)


@pytest.mark.parametrize(
    "stage",
    [
        {"provider": "openai"},  # no model
        {"provider": "openai", "model": "m", "context_tokens": 4096, "max_output_tokens": 3000},
        {"provider": "gemini", "model": "m"},
        {"provider": "openai", "model": "m", "colour": "blue"},
    ],
)
def test_bad_stage_settings_are_refused(stage: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StageConfig.model_validate(stage)


def test_a_config_reads_from_json_and_never_shows_its_key() -> None:
    stage = StageConfig.model_validate_json(
        '{"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret", "rpm": 500}'
    )
    assert stage.rpm == 500
    assert "sk-secret" not in repr(stage)
    assert ModelConfig(summarize=stage).reduce is stage


def test_a_staged_summarizer_asks_follow_ups_of_its_combining_model_only() -> None:
    class Asking:
        name = "asking"

        async def follow_ups(self, *args: object) -> object:
            return args

    class Plain:
        name = "plain"

    assert getattr(StagedSummarizer(Plain(), Asking()), "follow_ups", None) is not None  # type: ignore[arg-type]
    assert getattr(StagedSummarizer(Asking(), Plain()), "follow_ups", None) is None  # type: ignore[arg-type]
