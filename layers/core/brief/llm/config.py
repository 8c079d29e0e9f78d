"""What the model layer is configured with: one `StageConfig` per stage, in a `ModelConfig`.

Plain pydantic models, so `brief.settings` can hold them (read from `BRIEF_SUMMARIZE_MODEL`
and `BRIEF_COMBINE_MODEL` as JSON) without importing any client library.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ModelConfig", "Provider", "StageConfig"]

Provider = Literal["extractive", "openai", "anthropic", "bedrock"]


class StageConfig(BaseModel):
    """One stage's model (summarize = map, combine = reduce) and the limits it runs within.

    `rpm`, `tpm` and `concurrency` are per container: a function that runs N containers at
    once should get the provider's limits divided by N (the shared cooldown after a 429
    catches what this misses). `api_key` is the key itself or a reference
    (`ssm:/name`, `secretsmanager:id[#json-key]`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider = "extractive"
    model: str = ""
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible: up to /v1 (e.g. http://localhost:11434/v1); "
        "Anthropic: the host. None: the provider's public API.",
    )
    api_key: SecretStr | None = None
    context_tokens: Annotated[int, Field(ge=1_024, le=10_000_000)] = 128_000
    max_output_tokens: Annotated[int, Field(ge=16, le=200_000)] = 1_024
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    timeout_s: Annotated[float, Field(gt=0, le=900)] = 60.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    throttle_budget_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=60.0,
        description="Seconds a call may spend waiting out 429s (as the provider's Retry-After "
        "asks) before its message goes back to the queue; these waits use up no attempt.",
    )
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stream: bool = True

    @model_validator(mode="after")
    def _model_named(self) -> StageConfig:
        if self.provider != "extractive" and not self.model.strip():
            raise ValueError(f"provider {self.provider!r} needs a model name")
        if self.max_output_tokens * 2 > self.context_tokens:
            raise ValueError("max_output_tokens must be at most half of context_tokens")
        return self


class ModelConfig(BaseModel):
    """Both stages, the price table and the caps that keep a long job's bill bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summarize: StageConfig = StageConfig()
    combine: StageConfig | None = Field(
        default=None, description="None: the same model and limits as summarize."
    )
    prices: str = Field(
        default="",
        description='JSON: {"provider:model" or "model": [usd_in, usd_out] per million tokens}',
    )
    max_rounds: Annotated[int, Field(ge=1, le=10)] = 4
    max_chunks: Annotated[int, Field(ge=1, le=10_000)] = 64
    # The offline summarizer's sizes (used when a stage's provider is "extractive").
    summary_sentences: Annotated[int, Field(ge=1, le=50)] = 8
    report_findings: Annotated[int, Field(ge=1, le=50)] = 10

    @property
    def reduce(self) -> StageConfig:
        """The combine stage's configuration (summarize's when none is given)."""
        return self.combine or self.summarize
