"""What model calls cost: USD per million input and output tokens, by model name.

Prices come from a setting (JSON), because they change more often than releases:

    {"openai:gpt-4o-mini": [0.15, 0.60],
     "claude-3-5-haiku-latest": {"input": 0.80, "output": 4.00}}

A key is a full model name (`provider:model`, as `ChatModel.name` spells it) or just the
model; the full name wins. A model with no price costs 0 and is reported in `unknown` (and
logged once), so a report never shows a made-up number and a missing price is noticed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Price", "PriceTable"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call's tokens."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass
class PriceTable:
    """Prices by model name; `unknown` collects the names that had none."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)

    @classmethod
    def from_json(cls, text: str | None) -> PriceTable:
        """Parse the prices setting; raises ValueError naming what is wrong."""
        if not text or not text.strip():
            return cls()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"model prices are not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("model prices must be a JSON object of model name to price")
        return cls({str(name): _price(name, value) for name, value in data.items()})

    def price(self, model: str) -> Price | None:
        """The price of `model` (`provider:model` or the bare model), if the table has it."""
        found = self.prices.get(model)
        if found is None and ":" in model:
            found = self.prices.get(model.split(":", 1)[1])
        return found

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """USD for one call; 0 (and noted in `unknown`) for a model without a price."""
        price = self.price(model)
        if price is None:
            if model not in self.unknown:
                self.unknown.add(model)
                log.warning("no price for model; its cost counts as 0", extra={"model": model})
            return 0.0
        return price.cost(input_tokens, output_tokens)


def _price(name: str, value: object) -> Price:
    numbers: tuple[object, object]
    if isinstance(value, Mapping):
        numbers = (value.get("input"), value.get("output"))
    elif isinstance(value, list | tuple) and len(value) == 2:
        numbers = (value[0], value[1])
    else:
        raise ValueError(
            f"the price of {name} must be [input, output] or {{'input':…, 'output':…}} "
            "in USD per million tokens"
        )
    parsed = []
    for number in numbers:
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
            or number < 0
        ):
            raise ValueError(f"the price of {name} must be two non-negative numbers")
        parsed.append(float(number))
    return Price(parsed[0], parsed[1])
