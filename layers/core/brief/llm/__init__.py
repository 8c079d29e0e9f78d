"""Brief's model layer: chat models behind one port, and a `Summarizer` built on them.

    ChatModel            the low-level port (`brief.llm.chat`); adapters: `OpenAIChat`
                         (`brief.llm.openai`), `AnthropicChat` (`brief.llm.anthropic`),
                         `BedrockChat` (`brief.llm.bedrock`, imports botocore)
    LLMSummarizer        map/reduce summaries with token budgets, capped rounds and
                         citation checks (`brief.llm.summarizer`)
    RateLimiter          concurrency, RPM, TPM and a shared 429 cooldown (`brief.llm.ratelimit`)
    call_with_retries    jittered backoff that honours Retry-After (`brief.llm.retry`)
    build_summarizer     the configured summarizer from a `ModelConfig` (`brief.llm.factory`)

Adapters are imported from their modules, so a function pays only for the one it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brief.llm.chat import ChatModel, Completion
    from brief.llm.config import ModelConfig, StageConfig
    from brief.llm.errors import ModelRejected, ModelRetryable
    from brief.llm.factory import build_summarizer
    from brief.llm.pricing import PriceTable
    from brief.llm.ratelimit import RateLimiter
    from brief.llm.retry import call_with_retries
    from brief.llm.summarizer import LLMSummarizer
    from brief.llm.tokens import chunk, estimate_tokens

# Imported on first use (PEP 562): settings import `brief.llm.config` on every cold start, and
# must not pay for the summarizer, the providers and httpx unless a model is configured.
_HOMES = {
    "ChatModel": "chat",
    "Completion": "chat",
    "ModelConfig": "config",
    "StageConfig": "config",
    "ModelRejected": "errors",
    "ModelRetryable": "errors",
    "build_summarizer": "factory",
    "PriceTable": "pricing",
    "RateLimiter": "ratelimit",
    "call_with_retries": "retry",
    "LLMSummarizer": "summarizer",
    "chunk": "tokens",
    "estimate_tokens": "tokens",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'brief.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"brief.llm.{home}"), name)


__all__ = [
    "ChatModel",
    "Completion",
    "LLMSummarizer",
    "ModelConfig",
    "ModelRejected",
    "ModelRetryable",
    "PriceTable",
    "RateLimiter",
    "StageConfig",
    "build_summarizer",
    "call_with_retries",
    "chunk",
    "estimate_tokens",
]
