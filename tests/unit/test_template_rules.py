"""Operational rules that template.yaml must keep, checked on the real file.

Each rule guards a failure a user would notice: a message processed twice at once, a job
that waits forever, a batch retried whole, a role that can do more than its stage needs,
a bucket readable over plain HTTP, a deploy that cannot find its code.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

import pytest

from brief_local.template import Template, find_template

if TYPE_CHECKING:
    from collections.abc import Iterator

# AWS: a queue's visibility timeout should be at least 6x the consumer's timeout (plus its
# batching window), so a message is not handed to a second invocation while the first works.
VISIBILITY_FACTOR = 6
# AWS: at least 5 receives before the DLQ, so throttled deliveries are not dead-lettered.
MIN_MAX_RECEIVE_COUNT = 5
# SQS's default retention, for queues that do not set MessageRetentionPeriod.
DEFAULT_RETENTION_S = 345_600
DEADLETTER_FUNCTION = "DeadletterFunction"
LAYER = "CoreLayer"


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(find_template())


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, Any]:
    resources: dict[str, Any] = template.raw["Resources"]
    return resources


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in resources.items()
        if resource.get("Type") == kind
    }


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _policy_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement the template writes: function policies, roles, resource policies."""
    for logical_id, properties in _of_type(resources, "AWS::Serverless::Function").items():
        for policy in _as_list(properties.get("Policies")):
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in _as_list(policy["Statement"]):
                    yield logical_id, statement
    for logical_id, properties in _of_type(resources, "AWS::IAM::Role").items():
        for policy in _as_list(properties.get("Policies")):
            for statement in _as_list(policy.get("PolicyDocument", {}).get("Statement")):
                yield logical_id, statement
    for kind in (
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
    ):
        for logical_id, properties in _of_type(resources, kind).items():
            for statement in _as_list(properties.get("PolicyDocument", {}).get("Statement")):
                yield logical_id, statement


def _managed_policy_names(resources: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for logical_id, properties in _of_type(resources, "AWS::Serverless::Function").items():
        for policy in _as_list(properties.get("Policies")):
            if isinstance(policy, str):
                yield logical_id, policy
    for logical_id, properties in _of_type(resources, "AWS::IAM::Role").items():
        for arn in _as_list(properties.get("ManagedPolicyArns")):
            yield logical_id, arn if isinstance(arn, str) else repr(arn)


# --------------------------------------------------------------------------- queues


def test_every_consumed_queue_outlasts_six_times_its_consumer(template: Template) -> None:
    violations = [
        f"{function.logical_id}.{event.name}: {event.queue} VisibilityTimeout "
        f"{template.queues[event.queue].visibility_timeout} < {VISIBILITY_FACTOR} x "
        f"{function.timeout} s + {event.batching_window_s} s batching window"
        for function in template.functions.values()
        for event in function.sqs_events
        if template.queues[event.queue].visibility_timeout
        < VISIBILITY_FACTOR * function.timeout + event.batching_window_s
    ]
    assert not violations, "\n".join(violations)


def test_every_work_queue_redrives_to_a_dead_letter_queue(template: Template) -> None:
    dead_letter_queues = {q.dead_letter for q in template.queues.values() if q.dead_letter}
    violations = []
    for queue in template.queues.values():
        if queue.logical_id in dead_letter_queues:
            continue
        if queue.dead_letter not in template.queues:
            violations.append(f"{queue.logical_id} has no RedrivePolicy to a queue in the stack")
        elif (queue.max_receive_count or 0) < MIN_MAX_RECEIVE_COUNT:
            violations.append(
                f"{queue.logical_id} maxReceiveCount {queue.max_receive_count} "
                f"< {MIN_MAX_RECEIVE_COUNT}: throttled deliveries would be dead-lettered"
            )
    assert dead_letter_queues, "no queue redrives anywhere"
    assert not violations, "\n".join(violations)


def test_every_dead_letter_queue_is_drained_by_the_deadletter_function(
    template: Template,
) -> None:
    dead_letter_queues = {q.dead_letter for q in template.queues.values() if q.dead_letter}
    drained = {event.queue for event in template.functions[DEADLETTER_FUNCTION].sqs_events}
    assert dead_letter_queues <= drained, (
        f"dead messages nobody marks failed: {sorted(dead_letter_queues - drained)}"
    )


def test_dead_letter_queues_keep_messages_longer_than_their_sources(
    resources: dict[str, Any], template: Template
) -> None:
    # A standard queue's message keeps its first enqueue time in the DLQ, so a DLQ with
    # the same retention would drop it before anyone sees it.
    def retention(logical_id: str) -> int:
        properties = resources[logical_id].get("Properties", {})
        return int(properties.get("MessageRetentionPeriod", DEFAULT_RETENTION_S))

    violations = [
        f"{q.dead_letter} keeps {retention(q.dead_letter)} s <= {q.logical_id}'s "
        f"{retention(q.logical_id)} s"
        for q in template.queues.values()
        if q.dead_letter and retention(q.dead_letter) <= retention(q.logical_id)
    ]
    assert not violations, "\n".join(violations)


def test_every_queue_has_a_consumer(template: Template) -> None:
    consumed = {
        event.queue for function in template.functions.values() for event in function.sqs_events
    }
    assert set(template.queues) <= consumed, (
        f"queues nothing reads: {sorted(set(template.queues) - consumed)}"
    )


def test_every_sqs_event_reports_batch_item_failures(template: Template) -> None:
    # Without it one failing record makes Lambda retry the whole batch, done work included.
    violations = [
        f"{function.logical_id}.{event.name}"
        for function in template.functions.values()
        for event in function.sqs_events
        if not event.report_batch_item_failures
    ]
    assert not violations, "without ReportBatchItemFailures: " + ", ".join(violations)


def test_every_queue_is_encrypted_at_rest(resources: dict[str, Any]) -> None:
    unencrypted = [
        logical_id
        for logical_id, properties in _of_type(resources, "AWS::SQS::Queue").items()
        if properties.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in properties
    ]
    assert not unencrypted, f"queues without SSE: {unencrypted}"


# --------------------------------------------------------------------------- IAM


def test_no_allow_statement_grants_a_wildcard_action(resources: dict[str, Any]) -> None:
    violations = []
    for owner, statement in _policy_statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            violations.append(f"{owner}: Allow with NotAction grants everything else")
        for action in _as_list(statement.get("Action")):
            if action == "*" or (isinstance(action, str) and action.endswith(":*")):
                violations.append(f"{owner}: Allow {action}")
    assert not violations, "\n".join(violations)


def test_no_allow_statement_applies_to_every_resource(resources: dict[str, Any]) -> None:
    violations = [
        f"{owner}: Allow {statement.get('Action')} on Resource '*'"
        for owner, statement in _policy_statements(resources)
        if statement.get("Effect") == "Allow" and "*" in _as_list(statement.get("Resource"))
    ]
    assert not violations, "\n".join(violations)


def test_no_full_access_managed_policy(resources: dict[str, Any]) -> None:
    violations = [
        f"{owner}: {name}"
        for owner, name in _managed_policy_names(resources)
        if "FullAccess" in name
    ]
    assert not violations, "\n".join(violations)


# --------------------------------------------------------------------------- bucket


def test_every_bucket_is_encrypted_by_default(resources: dict[str, Any]) -> None:
    violations = []
    for logical_id, properties in _of_type(resources, "AWS::S3::Bucket").items():
        rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        algorithms = {
            rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
            for rule in _as_list(rules)
        }
        if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            violations.append(f"{logical_id}: no default encryption")
    assert not violations, "\n".join(violations)


def test_every_bucket_blocks_public_access(resources: dict[str, Any]) -> None:
    settings = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    violations = []
    for logical_id, properties in _of_type(resources, "AWS::S3::Bucket").items():
        block = properties.get("PublicAccessBlockConfiguration", {})
        violations += [
            f"{logical_id}: {name} is not true" for name in settings if not block.get(name)
        ]
        owner_enforced = [
            rule.get("ObjectOwnership")
            for rule in properties.get("OwnershipControls", {}).get("Rules", [])
        ] == ["BucketOwnerEnforced"]
        if not owner_enforced:
            violations.append(f"{logical_id}: ACLs are not disabled (BucketOwnerEnforced)")
    assert not violations, "\n".join(violations)


def _denies_insecure_transport(statement: dict[str, Any], bucket: str) -> bool:
    condition = statement.get("Condition", {}).get("Bool", {})
    resources = _as_list(statement.get("Resource"))
    covers_objects = any(
        isinstance(resource, dict)
        and isinstance(resource.get("Fn::Sub"), str)
        and resource["Fn::Sub"] == f"${{{bucket}.Arn}}/*"
        for resource in resources
    )
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in _as_list(statement.get("Action"))
        and str(condition.get("aws:SecureTransport")).lower() == "false"
        and {"Fn::GetAtt": [bucket, "Arn"]} in resources
        and covers_objects
    )


def test_every_bucket_refuses_plain_http(resources: dict[str, Any]) -> None:
    policies = _of_type(resources, "AWS::S3::BucketPolicy").values()
    violations = [
        f"{bucket}: no bucket policy denying s3:* on the bucket and its objects "
        "when aws:SecureTransport is false"
        for bucket in _of_type(resources, "AWS::S3::Bucket")
        if not any(
            policy.get("Bucket") == {"Ref": bucket}
            and any(
                _denies_insecure_transport(statement, bucket)
                for statement in _as_list(policy.get("PolicyDocument", {}).get("Statement"))
            )
            for policy in policies
        )
    ]
    assert not violations, "\n".join(violations)


# --------------------------------------------------------------------------- deploy


def test_outputs_name_the_api_url(template: Template) -> None:
    # tests/e2e finds a deployed stack's API from this output.
    assert "ApiUrl" in template.outputs, f"Outputs: {sorted(template.outputs)}"


def test_every_function_has_its_code_directory_and_requirements(template: Template) -> None:
    violations = []
    for function in template.functions.values():
        if not function.code_uri.is_dir():
            violations.append(f"{function.logical_id}: no directory {function.code_uri}")
        elif not (function.code_uri / "requirements.txt").is_file():
            violations.append(f"{function.logical_id}: no requirements.txt in {function.code_uri}")
    assert not violations, "\n".join(violations)


def test_the_layer_is_built_for_the_functions_runtime(
    resources: dict[str, Any], template: Template
) -> None:
    layer = resources[LAYER]
    build_method = layer.get("Metadata", {}).get("BuildMethod")
    assert build_method == "python3.12", f"{LAYER} BuildMethod is {build_method!r}"
    runtimes = layer["Properties"].get("CompatibleRuntimes", [])
    mismatched = [
        f"{function.logical_id} ({function.runtime})"
        for function in template.functions.values()
        if function.runtime not in runtimes
    ]
    assert not mismatched, f"functions on a runtime {LAYER} is not built for: {mismatched}"
    content = template.path.parent / layer["Properties"]["ContentUri"]
    assert (content / "brief" / "__init__.py").is_file(), f"{content} holds no brief package"


def _grants(resources: dict[str, Any], function: str, action: str, resource: str) -> bool:
    """Whether `function`'s own policy allows `action` on `resource` (a bucket key as
    `${Bucket.Arn}/key`, or a `!GetAtt X.Arn` as `X.Arn`)."""
    for owner, statement in _policy_statements(resources):
        if owner != function or statement.get("Effect") != "Allow":
            continue
        if action not in _as_list(statement.get("Action")):
            continue
        for granted in _as_list(statement.get("Resource")):
            pattern = granted.get("Fn::Sub") if isinstance(granted, dict) else granted
            if isinstance(granted, dict) and "Fn::GetAtt" in granted:
                attribute = granted["Fn::GetAtt"]
                pattern = attribute if isinstance(attribute, str) else ".".join(attribute)
            if isinstance(pattern, str) and fnmatch.fnmatchcase(resource, pattern):
                return True
    return False


# Every function that can end (or start) a batch's job notes it in the batch's ledger: it
# reads the shard and swaps in the new version.
LEDGER_WRITERS = (
    "ApiFunction",  # a cancel
    "StreamFunction",
    "ResearchFunction",  # created; no usable source
    "CombineFunction",  # the report
    "DeadletterFunction",
    "SweeperFunction",  # a stalled job; an end its ledger missed
)


@pytest.mark.parametrize("function", LEDGER_WRITERS)
def test_every_function_that_ends_a_batch_job_may_update_the_batch_ledger(
    resources: dict[str, Any], function: str
) -> None:
    shard = "${Bucket.Arn}/batches/0123/ledger/2.json"
    assert _grants(resources, function, "s3:GetObject", shard)
    assert _grants(resources, function, "s3:PutObject", shard)


def test_research_may_queue_a_batch_chunks_jobs_and_the_sweeper_read_a_job_record(
    resources: dict[str, Any],
) -> None:
    assert _grants(resources, "ResearchFunction", "sqs:SendMessage", "IntakeQueue.Arn")
    assert _grants(
        resources, "SweeperFunction", "s3:GetObject", "${Bucket.Arn}/jobs/j/request.json"
    )
    assert not _grants(
        resources, "SummarizeFunction", "s3:PutObject", "${Bucket.Arn}/batches/b/ledger/0.json"
    )
