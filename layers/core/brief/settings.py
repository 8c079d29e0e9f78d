"""One settings object, read from the environment where dependencies are built.

Never read at import time: a handler's container builds it on its first invocation and
keeps it (the container is the cache), and tests construct it directly. Every variable is
prefixed `BRIEF_` (e.g. `BRIEF_BUCKET`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from brief.llm.config import ModelConfig, StageConfig
from brief.messages import QueueRole

# The variables to read instead of os.environ, while `Settings.from_mapping` builds one.
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("brief_environment", default=None)


class _EnvironmentSource(EnvSettingsSource):
    """os.environ, or the mapping `Settings.from_mapping` was given: the local stack runs
    several functions (even several stacks) in one process, each with its own variables."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _ENVIRONMENT.get()
        if given is None:
            return super()._load_env_vars()
        return parse_env_vars(
            given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


_KEY_ENTRY = re.compile(r"^[A-Za-z0-9_.-]{1,64}:[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Where Brief's state lives and the limits it works within."""

    # Inputs are left out of validation errors: a mistyped secret must not reach the logs.
    model_config = SettingsConfigDict(
        env_prefix="BRIEF_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    bucket: str = Field(description="The one bucket that holds every job and cache.")
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias="AWS_ENDPOINT_URL",
        description="Where S3, SQS and the rest are (moto, on the local stack); unset in AWS.",
    )
    intake_queue_url: str = ""
    summarize_queue_url: str = ""
    combine_queue_url: str = ""
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")

    # Retrieval
    fetch_concurrency: int = Field(default=16, ge=1, le=256)
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    fetch_connect_timeout_s: float = Field(default=5.0, gt=0)
    fetch_read_timeout_s: float = Field(default=10.0, gt=0)
    page_cache: bool = Field(
        default=True, description="Keep pages in S3 and revalidate them (ETag/Last-Modified)."
    )
    page_cache_max_fresh_s: float = Field(
        default=86_400.0,
        ge=0,
        description="The longest a page is reused without asking its server, whatever its "
        "Cache-Control max-age says (0: always revalidate).",
    )
    retrieval_deadline_s: float = Field(default=25.0, gt=0)
    max_body_bytes: int = Field(default=5_000_000, ge=1_024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_document_bytes: int = Field(
        default=20_000_000, ge=1_024, description="Largest S3 document or upload read."
    )
    user_agent: str = "BriefBot/0.1 (+https://github.com/brief-research/brief)"
    allowed_hosts: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Hosts that may resolve to non-public addresses (comma-separated), "
        "for a deployment's own internal services and for loopback test fixtures.",
    )

    # Other kinds of source. Their endpoints are the operator's, not a user's, so they are
    # reached by a client of their own, outside the egress checks that guard users' URLs.
    search_provider: Literal["", "searxng", "brave", "tavily"] = ""
    searxng_url: str = ""
    brave_api_key: SecretStr = SecretStr("")
    tavily_api_key: SecretStr = SecretStr("")
    vector_kind: Literal["", "qdrant", "opensearch"] = ""
    vector_url: str = ""
    vector_api_key: SecretStr = SecretStr("")
    qdrant_model: str = "sentence-transformers/all-minilm-l6-v2"
    opensearch_model_id: str = ""
    opensearch_vector_field: str = "embedding"
    opensearch_username: str = ""
    opensearch_password: SecretStr = SecretStr("")
    vector_text_field: str = "text"
    vector_title_field: str = "title"
    vector_url_field: str = "url"
    document_places: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="s3://bucket/prefix/ places documents may be read from (comma-separated); "
        "the bucket's own uploads/ and documents/ are always allowed.",
    )

    # Models: the offline extractive summarizer unless set. Each stage is JSON, e.g.
    # BRIEF_SUMMARIZE_MODEL='{"provider": "openai", "model": "gpt-4o-mini",
    #   "api_key": "ssm:/brief/openai-api-key", "rpm": 250, "tpm": 200000}'
    summarize_model: Annotated[StageConfig, NoDecode] = Field(default_factory=StageConfig)
    combine_model: Annotated[StageConfig | None, NoDecode] = Field(
        default=None, description="The combine stage's model; unset: the summarize stage's."
    )
    model_prices: str = Field(
        default="", description='USD per million tokens: {"openai:gpt-4o-mini": [0.15, 0.6]}'
    )
    model_max_rounds: int = Field(default=4, ge=1, le=10)
    model_max_chunks: int = Field(default=64, ge=1, le=10_000)
    # Records of one SQS batch each function works on at once.
    research_concurrency: int = Field(default=5, ge=1, le=256)
    summarize_concurrency: int = Field(default=8, ge=1, le=256)
    combine_concurrency: int = Field(default=2, ge=1, le=256)
    deadletter_concurrency: int = Field(default=10, ge=1, le=256)
    combine_claim_timeout_s: float = Field(
        default=360.0,
        gt=0,
        description="After this long a combine claim whose message was never sent is taken "
        "over; must exceed the summarize function's timeout.",
    )
    stall_timeout_s: float = Field(
        default=2400.0,
        gt=0,
        description="The sweeper fails a job with no new event for this long. Must exceed the "
        "longest gap a healthy job can have: a failed attempt comes back only after its queue's "
        "visibility timeout (combine: 1800 s) and then runs up to its function's timeout (300 s).",
    )
    sweep_concurrency: int = Field(
        default=16, ge=1, le=256, description="Open jobs the sweeper checks at once."
    )
    report_draft_every_s: float = Field(
        default=1.0,
        ge=0,
        description="While a streaming combine model writes the answer, its text so far is "
        "written as a `report_text` event at most this often (one S3 PUT each), for the web "
        "page and `brief research` to show it growing. 0: no drafts.",
    )
    cancel_poll_s: float = Field(
        default=0.5,
        gt=0,
        description="Work in flight (fetches, a model call) that has run this long reads its "
        "job's cancel marker, then again this often: one S3 GET per job per container each "
        "time. Longer: fewer reads, a cancel takes effect later.",
    )
    summary_sentences: int = Field(default=8, ge=1, le=50)
    report_findings: int = Field(default=10, ge=1, le=50)

    # Callers
    require_auth: bool = Field(
        default=False,
        description="Refuse anonymous callers even when no keys are configured (the template "
        "sets it: a deployed API must not be open to anyone who finds its URL).",
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Callers' API keys as comma-separated `name:sha256hex` pairs (hashes only; "
        "`brief keys new NAME` makes a key and its entry). With none, every caller is anonymous.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_are_hashes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for n, entry in enumerate(value, start=1):
            if not _KEY_ENTRY.fullmatch(entry):
                # Never echo the entry: a mistaken deployment may have put a key there.
                raise ValueError(f"entry {n} is not `name:sha256hex`")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then the environment (os.environ or `from_mapping`'s)."""
        return init_settings, _EnvironmentSource(settings_cls), file_secret_settings

    @classmethod
    def from_mapping(cls, environment: Mapping[str, str]) -> Settings:
        """Settings from `environment` instead of the process's variables."""
        token = _ENVIRONMENT.set(environment)
        try:
            return cls()  # bucket comes from the mapping
        finally:
            _ENVIRONMENT.reset(token)

    @field_validator("summarize_model", mode="before")
    @classmethod
    def _unset_summarize_model(cls, value: object) -> object:
        if isinstance(value, str):  # an empty template parameter: the default
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("combine_model", mode="before")
    @classmethod
    def _unset_combine_model(cls, value: object) -> object:
        if isinstance(value, str):  # an empty template parameter: the summarize stage's
            return json.loads(value) if value.strip() else None
        return value

    def model_setup(self) -> ModelConfig:
        """Both stages' models and the caps that bound a long job's bill."""
        return ModelConfig(
            summarize=self.summarize_model,
            combine=self.combine_model,
            prices=self.model_prices,
            max_rounds=self.model_max_rounds,
            max_chunks=self.model_max_chunks,
            summary_sentences=self.summary_sentences,
            report_findings=self.report_findings,
        )

    def queue_urls(self) -> dict[QueueRole, str]:
        """Each work queue's URL, by its role."""
        return {
            "intake": self.intake_queue_url,
            "summarize": self.summarize_queue_url,
            "combine": self.combine_queue_url,
        }

    @field_validator("document_places", mode="before")
    @classmethod
    def _split_places(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(p.strip() for p in value.split(",") if p.strip())
        return value

    @model_validator(mode="after")
    def _configured_sources_are_complete(self) -> Settings:
        missing = []
        if self.search_provider == "searxng" and not self.searxng_url:
            missing.append("BRIEF_SEARXNG_URL")
        if self.search_provider == "brave" and not self.brave_api_key.get_secret_value():
            missing.append("BRIEF_BRAVE_API_KEY")
        if self.search_provider == "tavily" and not self.tavily_api_key.get_secret_value():
            missing.append("BRIEF_TAVILY_API_KEY")
        if self.vector_kind and not self.vector_url:
            missing.append("BRIEF_VECTOR_URL")
        if missing:
            raise ValueError(f"set {', '.join(missing)} for the configured source")
        return self
