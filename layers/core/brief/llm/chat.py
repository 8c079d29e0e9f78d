"""The low-level model port: one system prompt and one user prompt in, one text out.

Adapters (`OpenAIChat`, `AnthropicChat`, `BedrockChat`) make exactly one request per call and
translate every failure into `ModelRetryable` or `ModelRejected`; retries, rate limits and
budgets are the caller's (`brief.llm.summarizer`), so they are shared across calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["END", "MAX_TOKENS", "ChatModel", "Completion", "OnToken"]

OnToken = Callable[[str], Awaitable[None]]

# Normalized stop reasons; a provider's other reasons pass through as it spells them.
END = "end"  # the model finished (OpenAI "stop", Anthropic and Bedrock "end_turn")
MAX_TOKENS = "max_tokens"  # the answer was cut at max_tokens (OpenAI "length")


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer and the tokens it took.

    `usage_estimated` is True when the provider did not report usage (a stream without its
    usage chunk, an old server) and the counts are `brief.llm.tokens` estimates instead.
    """

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    usage_estimated: bool = False


class ChatModel(Protocol):
    """One model behind one API."""

    @property
    def name(self) -> str:
        """`provider:model`, e.g. "openai:gpt-4o-mini"; used in records, prices and cache keys."""
        ...

    @property
    def context_tokens(self) -> int:
        """The model's context window: prompt plus answer, in tokens."""
        ...

    async def complete(
        self,
        system: str,
        prompt: str,
        *,
        max_tokens: int,
        on_token: OnToken | None = None,
    ) -> Completion:
        """Answer `prompt` under `system`, at most `max_tokens` long.

        Streams where the API can: `on_token` is awaited with each piece of text as it
        arrives. A failed call may already have delivered some pieces; a retry starts over.
        Raises `ModelRetryable` or `ModelRejected`.
        """
        ...


class ChatAdapter:
    """What every provider adapter shares: the name and context window the port reads."""

    _name: str
    _context_tokens: int

    @property
    def name(self) -> str:
        """Provider and model, e.g. "openai:gpt-4o-mini"."""
        return self._name

    @property
    def context_tokens(self) -> int:
        """The model's context window, in tokens."""
        return self._context_tokens
