"""What the CLI says a job's model calls cost (`brief research`, `brief status`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx
import pytest

from brief_cli import cli
from brief_cli.cli import format_view, usage_line
from brief_cli.client import BriefClient

VIEW = {
    "job_id": "j",
    "state": "done",
    "question": "Why?",
    "usage": {"input_tokens": 5210, "output_tokens": 640, "calls": 6, "cost_usd": 0.0012},
    "stage_usage": {
        "summarize": {"input_tokens": 5000, "output_tokens": 500, "calls": 5, "cost_usd": 0.0004},
        "combine": {"input_tokens": 210, "output_tokens": 140, "calls": 1, "cost_usd": 0.0008},
    },
}


def test_a_job_that_called_a_model_says_its_tokens_and_cost_by_stage() -> None:
    line = (
        "Model: 6 calls, 5,210 tokens in, 640 out, about $0.0012 "
        "(summarize $0.0004, combine $0.0008)"
    )
    assert usage_line(VIEW) == line
    assert format_view(VIEW).splitlines()[-1] == line


def test_the_offline_summarizer_costs_nothing_and_says_nothing() -> None:
    offline = {**VIEW, "usage": {"input_tokens": 0, "output_tokens": 0, "calls": 0, "cost_usd": 0}}
    assert usage_line(offline) is None
    assert usage_line({"job_id": "j"}) is None
    assert "Model:" not in format_view({**offline, "stage_usage": {}})


def test_research_asks_each_search_for_the_number_of_results_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(401, json={"title": "Unauthorized", "detail": "no key"})

    def client(args: argparse.Namespace) -> BriefClient:
        return BriefClient("http://brief.test", transport=httpx.MockTransport(api))

    monkeypatch.setattr(cli, "_client", client)
    argv = ["research", "Why?", "https://a.test/", "--search", "bees", "--search-limit", "3"]
    assert cli.main(argv) != 0
    assert sent[0]["sources"] == ["https://a.test/", {"search": "bees", "limit": 3}]
    assert cli.build_parser().parse_args(["research", "Why?"]).search_limit == 5


def test_a_deep_jobs_status_shows_its_questions_indented_by_level() -> None:
    tree = [
        {"node": "1", "parent": None, "question": "Why?", "level": 1, "sources": [0, 1]},
        {"node": "2.1", "parent": "1", "question": "What is known about ice?", "level": 2,
         "sources": [4]},
        {"node": "2.2", "parent": "1", "question": "What is known about melt?", "level": 2,
         "sources": []},
    ]  # fmt: skip
    lines = format_view({**VIEW, "tree": tree}).splitlines()

    start = lines.index("Questions followed:")
    assert lines[start + 1 : start + 4] == [
        "  1 Why? [1][2]",
        "    2.1 What is known about ice? [5]",
        "    2.2 What is known about melt? (none yet, or none new)",
    ]
    assert "Questions followed:" not in format_view(VIEW)
