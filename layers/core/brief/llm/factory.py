"""Builds the configured `Summarizer`: the offline extractive one, models, or a mix.

The only place in `brief.llm` that reads configuration. Clients come in from the caller
(`brief.wiring`), created once per container: an httpx client for the HTTP APIs, a factory
for the Bedrock client (called only when a stage uses Bedrock), and a resolver for keys
kept in SSM or Secrets Manager.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from brief.extractive import ExtractiveSummarizer
from brief.llm.config import ModelConfig, StageConfig
from brief.ports import ModelText, OnModelRetry, OnText, SourceText, Summarizer

# The model machinery is imported once a stage names a model, and httpx only by the providers
# that use it: with the default (extractive) configuration summarize and combine load neither.
if TYPE_CHECKING:
    import httpx

    from brief.llm.chat import ChatModel
    from brief.llm.ratelimit import RateLimiter

__all__ = ["ModelConfig", "StageConfig", "StagedSummarizer", "build_summarizer"]

BedrockClientFactory = Callable[[], Awaitable[Any]]
SecretClients = Callable[[str], Awaitable[Any]]
# The client itself, or a function that makes it (called only when an HTTP provider is used).
HttpClient: TypeAlias = "httpx.AsyncClient | Callable[[], httpx.AsyncClient]"


class StagedSummarizer:
    """Summarizes with one summarizer and combines with another (e.g. extractive, then a
    model): the offline summaries cost nothing and the model writes the report."""

    def __init__(self, summarize_with: Summarizer, combine_with: Summarizer) -> None:
        self._map = summarize_with
        self._reduce = combine_with
        self._name = f"{summarize_with.name}|{combine_with.name}"
        # Each stage is as cheap to redo as the summarizer that does it (`worth_caching`).
        self.local_stages = frozenset(
            {"summarize"} & getattr(summarize_with, "local_stages", frozenset())
            | {"combine"} & getattr(combine_with, "local_stages", frozenset())
        )

    @property
    def name(self) -> str:
        return self._name

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        return await self._map.summarize(question, source, on_retry=on_retry)

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        return await self._reduce.combine(question, summaries, on_retry=on_retry, on_text=on_text)

    def __getattr__(self, name: str) -> Any:
        """What else the combining summarizer offers (deep research's `follow_ups`)."""
        if name == "follow_ups":
            return getattr(self._reduce, name)
        raise AttributeError(name)


async def build_summarizer(
    config: ModelConfig,
    *,
    http: HttpClient | None = None,
    bedrock_client_factory: BedrockClientFactory | None = None,
    secret_clients: SecretClients | None = None,
    extractive: Summarizer | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Summarizer:
    """The summarizer `config` describes.

    `http` may be a function that makes the client, so a container whose models are all
    extractive or Bedrock never builds one. Both stages "extractive" (the default):
    `extractive`, or a new `ExtractiveSummarizer`.
    Otherwise an `LLMSummarizer` over the configured models, each stage with its own
    rate limiter (one limiter when both stages use the same model and endpoint).
    """
    offline = extractive or ExtractiveSummarizer(
        sentences=config.summary_sentences, findings=config.report_findings
    )
    map_config, reduce_config = config.summarize, config.reduce
    if map_config.provider == "extractive" and reduce_config.provider == "extractive":
        return offline
    from brief.llm.pricing import PriceTable
    from brief.llm.ratelimit import RateLimiter
    from brief.llm.summarizer import LLMSummarizer

    resolver = _Resolver(secret_clients)
    if callable(http):  # a function that makes it (a client is not callable)
        http = functools.cache(http)  # one client for every model, made on first need
    models: dict[tuple[object, ...], tuple[ChatModel, RateLimiter]] = {}

    async def model_for(stage: StageConfig) -> tuple[ChatModel, RateLimiter]:
        key = (stage.provider, stage.model, stage.base_url, stage.api_key, stage.context_tokens)
        if key not in models:
            model = await _chat_model(stage, http, bedrock_client_factory, resolver)
            limiter = RateLimiter(stage.concurrency, stage.rpm, stage.tpm, clock=clock, sleep=sleep)
            models[key] = (model, limiter)
        return models[key]

    map_stage = reduce_config if map_config.provider == "extractive" else map_config
    reduce_stage = map_config if reduce_config.provider == "extractive" else reduce_config
    map_model, map_limiter = await model_for(map_stage)
    reduce_model, reduce_limiter = await model_for(reduce_stage)
    llm = LLMSummarizer(
        map_model,
        reduce_model,
        limiter_map=map_limiter,
        limiter_reduce=reduce_limiter,
        prices=PriceTable.from_json(config.prices),
        max_output_tokens=map_stage.max_output_tokens,
        reduce_output_tokens=reduce_stage.max_output_tokens,
        max_rounds=config.max_rounds,
        max_chunks=config.max_chunks,
        attempts=max(map_stage.attempts, reduce_stage.attempts),
        throttle_budget_s=max(map_stage.throttle_budget_s, reduce_stage.throttle_budget_s),
        variant=repr((map_stage.temperature, reduce_stage.temperature)),
        sleep=sleep,
    )
    if map_config.provider == "extractive":
        return StagedSummarizer(offline, llm)
    if reduce_config.provider == "extractive":
        return StagedSummarizer(llm, offline)
    return llm


class _Resolver:
    """Key references resolved through `brief.llm.secrets`, imported only when needed."""

    def __init__(self, clients: SecretClients | None) -> None:
        self._clients = clients
        self._resolver: Any = None

    async def resolve(self, value: str | None) -> str | None:
        from brief.llm.secrets import SecretResolver, is_reference

        if not value or not is_reference(value):
            return value
        if self._clients is None:
            raise ValueError("an API key reference needs AWS clients to resolve it")
        if self._resolver is None:
            self._resolver = SecretResolver(self._clients)
        resolved: str | None = await self._resolver.resolve(value)
        return resolved


async def _chat_model(
    stage: StageConfig,
    http: HttpClient | None,
    bedrock_client_factory: BedrockClientFactory | None,
    resolver: _Resolver,
) -> ChatModel:
    key = await resolver.resolve(stage.api_key.get_secret_value() if stage.api_key else None)
    if stage.provider == "openai":
        from brief.llm.openai import OPENAI_BASE_URL, OpenAIChat

        return OpenAIChat(
            _need(http, "openai"),
            model=stage.model,
            context_tokens=stage.context_tokens,
            base_url=stage.base_url or OPENAI_BASE_URL,
            api_key=key,
            timeout_s=stage.timeout_s,
            stream=stage.stream,
            temperature=stage.temperature,
        )
    if stage.provider == "anthropic":
        from brief.llm.anthropic import ANTHROPIC_BASE_URL, AnthropicChat

        return AnthropicChat(
            _need(http, "anthropic"),
            model=stage.model,
            context_tokens=stage.context_tokens,
            api_key=key,
            base_url=stage.base_url or ANTHROPIC_BASE_URL,
            timeout_s=stage.timeout_s,
            stream=stage.stream,
            temperature=stage.temperature,
        )
    if stage.provider == "bedrock":
        from brief.llm.bedrock import BedrockChat

        if bedrock_client_factory is None:
            raise ValueError("provider 'bedrock' needs a bedrock-runtime client factory")
        return BedrockChat(
            await bedrock_client_factory(),
            model=stage.model,
            context_tokens=stage.context_tokens,
            stream=stage.stream,
            temperature=stage.temperature,
        )
    raise ValueError(f"no chat model for provider {stage.provider!r}")


def _need(http: HttpClient | None, provider: str) -> httpx.AsyncClient:
    if http is None:
        raise ValueError(f"provider {provider!r} needs an httpx.AsyncClient")
    return http() if callable(http) else http
