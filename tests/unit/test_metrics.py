"""Metrics are CloudWatch EMF lines in Lambda, and nothing at all anywhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from brief import metrics
from brief.models import Usage


@pytest.fixture
def emf(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    metrics.configure(namespace="BriefTest", service="brief")
    yield capsys
    metrics.disable()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_outside_lambda_nothing_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    assert not metrics.enabled()
    metrics.count("JobsStarted")
    metrics.duration("StageDuration", 12.5, stage="summarize")
    metrics.record_usage(Usage(input_tokens=10, output_tokens=5, calls=1, cost_usd=0.01))
    metrics.flush()
    assert capsys.readouterr().out == ""


def test_an_invocations_metrics_go_out_as_one_emf_document(
    emf: pytest.CaptureFixture[str],
) -> None:
    metrics.count("JobsStarted")
    metrics.count("FetchFailures", 2)
    metrics.record_usage(Usage(input_tokens=120, output_tokens=30, calls=2, cost_usd=0.0042))
    assert lines(emf) == []  # nothing until the invocation ends
    metrics.flush()
    (document,) = lines(emf)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "BriefTest"
    assert directive["Dimensions"] == [["service"]]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        "JobsStarted": "Count",
        "FetchFailures": "Count",
        "InputTokens": "Count",
        "OutputTokens": "Count",
        "ModelCostUSD": "None",
    }
    assert document["service"] == "brief"
    assert (document["JobsStarted"], document["FetchFailures"]) == ([1.0], [2.0])
    assert (document["InputTokens"], document["ModelCostUSD"]) == ([120.0], [0.0042])
    metrics.flush()
    assert lines(emf) == []  # flushed once; an empty invocation writes nothing


def test_a_dimensioned_metric_is_its_own_document_at_once(
    emf: pytest.CaptureFixture[str],
) -> None:
    metrics.duration("StageDuration", 812.0, stage="summarize")
    (document,) = lines(emf)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service", "stage"]]
    assert directive["Metrics"] == [{"Name": "StageDuration", "Unit": "Milliseconds"}]
    assert (document["stage"], document["StageDuration"]) == ("summarize", [812.0])


def test_a_malformed_metric_is_dropped_not_raised(
    emf: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    metrics.amount("Latency", 3.0, unit="Fortnights")
    metrics.count("", 1)
    metrics.flush()
    assert lines(emf) == []
    assert [r.getMessage() for r in caplog.records] == ["metric dropped", "metric dropped"]
