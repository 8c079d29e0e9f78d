"""Schedule events: how the template reader takes them, and the rules the sweeper's keep.

The rules guard what a user would notice: a healthy job failed as "stalled" because the
timeout is shorter than a retry, or every new job refused because its role may not write
the sweeper's index.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from brief.settings import Settings
from brief_local.template import ScheduleEventSpec, Template, find_template, rate_seconds

SWEEPER = "SweeperFunction"


def _load(tmp_path: Path, events: str) -> Template:
    text = f"""
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Every:
        Type: String
        Default: rate(2 hours)
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn/
          Handler: app.handler
          Runtime: python3.12
          Events:
{textwrap.indent(textwrap.dedent(events), " " * 12)}
    """
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Template.load(path)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
    ],
)
def test_rates_become_intervals(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(0 minutes)", "every 5 minutes"])
def test_schedules_without_a_fixed_rate_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds(expression)


def test_schedule_events_are_read_literal_or_from_a_parameter(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
        FromParameter:
          Type: Schedule
          Properties:
            Schedule: !Ref Every
        Paused:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
            Enabled: false
        """,
    )
    assert template.functions["Fn"].schedules == (
        ScheduleEventSpec(name="Tick", expression="rate(5 minutes)"),
        ScheduleEventSpec(name="FromParameter", expression={"Ref": "Every"}),
        ScheduleEventSpec(name="Paused", expression="rate(1 minute)", enabled=False),
    )
    assert template.functions["Fn"].sqs_events == ()


def test_a_cron_schedule_is_refused_when_the_template_loads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"rate\(N minutes"):
        _load(
            tmp_path,
            """
            Nightly:
              Type: Schedule
              Properties:
                Schedule: cron(0 3 * * ? *)
            """,
        )


# --------------------------------------------------------------------------- the real template


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(find_template())


def _longest_healthy_gap_s(template: Template) -> int:
    """A failed attempt comes back after its queue's visibility timeout, then runs up to its
    function's timeout: a healthy job may show no new event for that long."""
    return max(
        template.queues[event.queue].visibility_timeout + function.timeout
        for function in template.functions.values()
        for event in function.sqs_events
    )


def test_the_sweeper_runs_on_a_schedule(template: Template) -> None:
    (schedule,) = template.functions[SWEEPER].schedules
    assert schedule.enabled
    assert schedule.expression == {"Ref": "SweepSchedule"}
    assert rate_seconds(str(template.parameters["SweepSchedule"])) == 300


def test_the_stall_timeout_outlasts_a_retry_of_the_slowest_stage(template: Template) -> None:
    gap = _longest_healthy_gap_s(template)
    parameter = template.raw["Parameters"]["StallTimeoutSeconds"]
    assert int(parameter["MinValue"]) >= gap
    assert int(parameter["Default"]) > gap
    assert Settings(bucket="b").stall_timeout_s > gap
    environment = template.functions[SWEEPER].environment
    assert environment["BRIEF_STALL_TIMEOUT_S"] == {"Ref": "StallTimeoutSeconds"}


def _object_grants(template: Template, logical_id: str) -> dict[str, set[str]]:
    """Object prefix (`jobs/`) -> the S3 actions the function's policies allow on it."""
    grants: dict[str, set[str]] = {}
    properties = template.raw["Resources"][logical_id]["Properties"]
    for policy in properties.get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            resources: Any = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                sub = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
                if sub.startswith("${Bucket.Arn}/"):
                    prefix = sub.removeprefix("${Bucket.Arn}/").removesuffix("*")
                    grants.setdefault(prefix, set()).update(actions)
    return grants


@pytest.mark.parametrize("creator", ["ApiFunction", "StreamFunction", "ResearchFunction"])
def test_every_function_that_creates_jobs_may_enter_them_in_the_index(
    template: Template, creator: str
) -> None:
    assert "s3:PutObject" in _object_grants(template, creator).get("open/", set())


def test_the_sweeper_may_fail_jobs_resume_fan_ins_note_ledgers_and_drop_entries_and_no_more(
    template: Template,
) -> None:
    assert _object_grants(template, SWEEPER) == {
        "jobs/": {"s3:PutObject"},
        "jobs/*/request.json": {"s3:GetObject"},  # which batch an ended job is in
        # a stalled fan-in: its level's sources, its claim, whether its combine went out
        "jobs/*/retrieval.json": {"s3:GetObject"},
        "jobs/*/combine.claim": {"s3:GetObject"},
        "jobs/*/combine.sent": {"s3:GetObject"},
        "batches/*/ledger/": {"s3:GetObject", "s3:PutObject"},
        "open/": {"s3:DeleteObject"},
    }
    statements = [
        s
        for policy in template.raw["Resources"][SWEEPER]["Properties"]["Policies"]
        for s in policy["Statement"]
        if str(s["Action"]).startswith("sqs:")
    ]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("sqs:SendMessage", {"Fn::GetAtt": ["CombineQueue", "Arn"]})
    ]
    claim = "BRIEF_COMBINE_CLAIM_TIMEOUT_S"  # a claim older than this has no live owner
    summarize = template.functions["SummarizeFunction"].environment
    assert template.functions[SWEEPER].environment[claim] == summarize[claim]
