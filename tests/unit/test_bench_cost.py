"""The cost model: each line from the counts and the prices, by hand."""

from __future__ import annotations

import pytest

from bench.cost import JobUse, cost, describe, memory_mb


def test_a_job_costs_its_calls_compute_and_messages_at_the_list_prices() -> None:
    use = JobUse(
        s3_calls={"GetObject": 40, "PutObject": 30, "ListObjectsV2": 10},
        sqs_sends=3,
        messages=7,
        function_s={"api": 0.1, "research": 1.0, "summarize": 15.0, "combine": 2.0},
        memory_mb={"api": 1024, "research": 1024, "summarize": 512, "combine": 1024},
        api_requests=2,
        model_tokens=(10_000, 1_000),
    )

    figures = cost(use, 1_000, (0.15, 0.60))

    lines = figures["lines_usd"]
    assert lines["lambda_requests"] == pytest.approx(1_000 * 4 * 0.20 / 1e6)
    assert figures["per_job"]["lambda_gb_seconds"] == pytest.approx(0.1 + 1.0 + 7.5 + 2.0)
    assert lines["lambda_compute"] == pytest.approx(1_000 * 10.6 * 0.0000166667)
    assert lines["s3_writes_and_lists"] == pytest.approx(1_000 * 40 * 0.005 / 1_000)
    assert lines["s3_reads"] == pytest.approx(1_000 * 40 * 0.0004 / 1_000)
    assert lines["sqs"] == pytest.approx(1_000 * (3 + 14) * 0.40 / 1e6)
    assert lines["api_gateway"] == pytest.approx(1_000 * 2 * 1.00 / 1e6)
    assert figures["model_usd"] == pytest.approx(1_000 * (10_000 * 0.15 + 1_000 * 0.60) / 1e6)
    text = "\n".join(describe(figures))
    assert "Cost of 1,000 seed jobs in us-east-1" in text
    assert "model                  $  2.1000  (10,000 in / 1,000 out tokens" in text


def test_function_memory_comes_from_the_template() -> None:
    assert memory_mb() == {"api": 1024, "research": 1024, "summarize": 1024, "combine": 1024}
