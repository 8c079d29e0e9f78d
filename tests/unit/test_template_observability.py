"""What template.yaml promises an operator: logs that expire, an alarm for every dead
message, Powertools' names for logs and metrics, and a bucket that does not grow forever."""

from __future__ import annotations

from typing import Any

import pytest

from brief_local.template import Template, find_template

# prefix -> the parameter that sets its lifetime in days
EXPIRING_PREFIXES = {
    "jobs/": "JobExpirationDays",
    "cache/": "CacheExpirationDays",
    "uploads/": "UploadExpirationDays",
}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(find_template())


def _of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.raw["Resources"].items()
        if resource.get("Type") == kind
    }


def test_every_function_logs_to_a_group_with_retention(template: Template) -> None:
    groups = _of_type(template, "AWS::Logs::LogGroup").values()
    named = {g["LogGroupName"].get("Fn::Sub"): g for g in groups if "LogGroupName" in g}
    missing = [
        function
        for function in template.functions
        if named.get(f"/aws/lambda/${{{function}}}", {}).get("RetentionInDays")
        != {"Ref": "LogRetentionDays"}
    ]
    assert not missing, f"functions whose logs are kept forever: {missing}"


def test_every_dead_letter_queue_has_an_alarm_on_its_depth(template: Template) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm").values()

    def watched(alarm: dict[str, Any]) -> set[tuple[str, str]]:
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        return {
            (metric["MetricName"], dimension["Value"]["Fn::GetAtt"][0])
            for metric in stats
            for dimension in metric.get("Dimensions", [])
            if dimension["Name"] == "QueueName"
        }

    dead_letter_queues = {q.dead_letter for q in template.queues.values() if q.dead_letter}
    assert dead_letter_queues
    for queue in sorted(dead_letter_queues):
        (alarm,) = [
            a for a in alarms if ("ApproximateNumberOfMessagesVisible", queue) in watched(a)
        ]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        assert alarm["AlarmActions"] == topic, f"{queue}'s alarm notifies no one"


def test_the_alarm_topic_is_optional(template: Template) -> None:
    assert template.parameters["AlarmTopicArn"] == ""
    assert template.raw["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def test_jobs_caches_and_uploads_expire_after_their_parameter(template: Template) -> None:
    (bucket,) = _of_type(template, "AWS::S3::Bucket").values()
    rules = bucket["LifecycleConfiguration"]["Rules"]
    expiring = {
        rule.get("Prefix"): rule["ExpirationInDays"]
        for rule in rules
        if rule["Status"] == "Enabled" and "ExpirationInDays" in rule
    }
    assert expiring == {p: {"Ref": name} for p, name in EXPIRING_PREFIXES.items()}
    days = {name: int(str(template.parameters[name])) for name in EXPIRING_PREFIXES.values()}
    assert days == {"JobExpirationDays": 90, "CacheExpirationDays": 30, "UploadExpirationDays": 7}


def test_every_function_names_its_service_and_metrics_namespace(template: Template) -> None:
    for function in template.functions.values():
        assert function.environment.get("POWERTOOLS_SERVICE_NAME") == "brief"
        assert function.environment.get("POWERTOOLS_METRICS_NAMESPACE") == "Brief"
