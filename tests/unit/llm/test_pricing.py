"""Costs come from the configured price table; a model without a price is flagged, not guessed."""

from __future__ import annotations

import logging

import pytest

from brief.llm.pricing import PriceTable

PRICES = (
    '{"openai:gpt-4o-mini": [0.15, 0.60], "claude-3-5-haiku-latest": {"input": 0.8, "output": 4}}'
)


def test_cost_is_tokens_times_price_per_million() -> None:
    table = PriceTable.from_json(PRICES)
    assert table.cost("openai:gpt-4o-mini", 1_000_000, 100_000) == pytest.approx(0.15 + 0.06)
    # A bare model name matches whatever provider serves it.
    assert table.cost("anthropic:claude-3-5-haiku-latest", 10_000, 1_000) == pytest.approx(0.012)


def test_an_unknown_model_costs_nothing_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = PriceTable.from_json(PRICES)
    with caplog.at_level(logging.WARNING, logger="brief.llm.pricing"):
        assert table.cost("openai:gpt-9", 1000, 1000) == 0.0
        assert table.cost("openai:gpt-9", 1000, 1000) == 0.0
    assert table.unknown == {"openai:gpt-9"}
    assert len([r for r in caplog.records if "no price" in r.message]) == 1


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        "{not json",
        '{"m": [1]}',
        '{"m": [-1, 2]}',
        '{"m": {"input": 1}}',
        '{"m": [true, 1]}',
    ],
)
def test_a_malformed_price_setting_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="price"):
        PriceTable.from_json(text)


def test_no_setting_is_an_empty_table() -> None:
    assert PriceTable.from_json("").prices == {}
    assert PriceTable.from_json(None).prices == {}
