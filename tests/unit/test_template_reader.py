"""The template reader on small inline templates: what the local stack will build and run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from brief_local.template import (
    CloudFormationLoader,
    QueueSpec,
    SqsEventSpec,
    Template,
    find_template,
    resolve,
)

REFS = {
    "Bucket": "brief-bucket",
    "IntakeQueue": "http://localhost:4566/000000000000/intake",
    "Stage": "dev",
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
}
ATTRS = {
    ("Bucket", "Arn"): "arn:aws:s3:::brief-bucket",
    ("IntakeQueue", "Arn"): "arn:aws:sqs:eu-west-1:000000000000:intake",
}


def _parse(text: str) -> object:
    return yaml.load(textwrap.dedent(text), Loader=CloudFormationLoader)  # noqa: S506


def _load(tmp_path: Path, text: str) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Template.load(path)


# --------------------------------------------------------------------------- tags


def test_short_form_tags_read_as_their_long_form() -> None:
    parsed = _parse(
        """
        ref: !Ref Bucket
        getatt: !GetAtt Bucket.Arn
        getatt_nested: !GetAtt Db.Endpoint.Address
        getatt_list: !GetAtt [Bucket, Arn]
        sub: !Sub "${Bucket.Arn}/jobs/*"
        sub_vars: !Sub ["${Name}-x", {Name: !Ref Stage}]
        join: !Join [",", [a, !Ref Stage]]
        if: !If [IsProd, 1, 2]
        select: !Select [0, !GetAZs ""]
        split: !Split [",", "a,b"]
        equals: !Equals [!Ref Stage, prod]
        not: !Not [!Condition IsProd]
        and: !And [!Condition A, !Condition B]
        or: !Or [!Condition A, !Condition B]
        map: !FindInMap [Sizes, !Ref Stage, Memory]
        import: !ImportValue shared-vpc
        base64: !Base64 hello
        """
    )
    assert parsed == {
        "ref": {"Ref": "Bucket"},
        "getatt": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "getatt_nested": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "getatt_list": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "sub": {"Fn::Sub": "${Bucket.Arn}/jobs/*"},
        "sub_vars": {"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Stage"}}]},
        "join": {"Fn::Join": [",", ["a", {"Ref": "Stage"}]]},
        "if": {"Fn::If": ["IsProd", 1, 2]},
        "select": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        "split": {"Fn::Split": [",", "a,b"]},
        "equals": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "not": {"Fn::Not": [{"Condition": "IsProd"}]},
        "and": {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        "or": {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]},
        "map": {"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]},
        "import": {"Fn::ImportValue": "shared-vpc"},
        "base64": {"Fn::Base64": "hello"},
    }


def test_unquoted_dates_stay_strings_as_in_cloudformation() -> None:
    assert _parse("Version: 2012-10-17") == {"Version": "2012-10-17"}


def test_getatt_without_an_attribute_is_a_yaml_error() -> None:
    with pytest.raises(yaml.YAMLError, match=r"Resource\.Attribute"):
        _parse("x: !GetAtt Bucket")


def test_the_loader_leaves_plain_safe_loading_alone() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load("x: !Ref Bucket")


# --------------------------------------------------------------------------- functions

FUNCTIONS = """
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      WorkerTimeout:
        Type: Number
        Default: 45
    Globals:
      Function:
        Runtime: python3.12
        Timeout: 30
        Layers: [!Ref CoreLayer]
        Environment:
          Variables:
            BRIEF_BUCKET: !Ref Bucket
            LOG_LEVEL: INFO
    Resources:
      Bucket:
        Type: AWS::S3::Bucket
      Api:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: functions/api/
          Handler: app.handler
          MemorySize: 512
          Environment:
            Variables:
              LOG_LEVEL: DEBUG
              EXTRA: "1"
          Events:
            Proxy:
              Type: HttpApi
              Properties: {Path: "/{proxy+}", Method: ANY}
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: functions/worker
          Handler: pkg.entry.main
          Timeout: !Ref WorkerTimeout
"""


def test_functions_merge_globals_with_their_own_settings(tmp_path: Path) -> None:
    api = _load(tmp_path, FUNCTIONS).functions["Api"]

    assert api.runtime == "python3.12"
    assert api.timeout == 30
    assert api.memory == 512
    assert api.environment == {
        "BRIEF_BUCKET": {"Ref": "Bucket"},  # left unresolved for the local stack
        "LOG_LEVEL": "DEBUG",  # the function's own value wins
        "EXTRA": "1",
    }


def test_functions_without_timeout_or_memory_get_sams_defaults(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Resources:
          Bare:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: ., Handler: app.handler, Runtime: python3.12}
        """,
    )
    bare = template.functions["Bare"]
    assert (bare.timeout, bare.memory) == (3, 128)
    assert bare.environment == {}
    assert bare.sqs_events == ()
    assert not bare.http_api


def test_functions_locate_their_code_and_handler(tmp_path: Path) -> None:
    template = _load(tmp_path, FUNCTIONS)
    api, worker = template.functions["Api"], template.functions["Worker"]

    assert api.code_uri == tmp_path.resolve() / "functions" / "api"
    assert (api.module, api.attribute) == ("app", "handler")
    assert (worker.module, worker.attribute) == ("pkg.entry", "main")
    assert api.http_api
    assert not worker.http_api


def test_numeric_settings_may_refer_to_parameter_defaults(tmp_path: Path) -> None:
    template = _load(tmp_path, FUNCTIONS)
    assert template.functions["Worker"].timeout == 45
    assert template.parameters == {"WorkerTimeout": 45}


def test_a_function_without_a_runtime_cannot_be_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Bare\.Properties\.Runtime"):
        _load(
            tmp_path,
            """
            Resources:
              Bare:
                Type: AWS::Serverless::Function
                Properties: {CodeUri: ., Handler: app.handler}
            """,
        )


# --------------------------------------------------------------------------- queues

QUEUES = """
    Resources:
      Work:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 180
          ReceiveMessageWaitTimeSeconds: 20
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt WorkDlq.Arn
            maxReceiveCount: 5
      WorkDlq:
        Type: AWS::SQS::Queue
      Ordered:
        Type: AWS::SQS::Queue
        Properties:
          FifoQueue: true
          RedrivePolicy: '{"deadLetterTargetArn": {"Fn::GetAtt": ["WorkDlq", "Arn"]},
            "maxReceiveCount": "3"}'
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: .
          Handler: app.handler
          Runtime: python3.12
          Events:
            Work:
              Type: SQS
              Properties:
                Queue: !GetAtt Work.Arn
                BatchSize: 5
                MaximumBatchingWindowInSeconds: 2
                FunctionResponseTypes: [ReportBatchItemFailures]
                ScalingConfig: {MaximumConcurrency: 10}
            Dead:
              Type: SQS
              Properties:
                Queue: !GetAtt [WorkDlq, Arn]
"""


def test_queues_carry_visibility_polling_and_redrive(tmp_path: Path) -> None:
    queues = _load(tmp_path, QUEUES).queues

    assert queues["Work"] == QueueSpec(
        logical_id="Work",
        visibility_timeout=180,
        wait_time_seconds=20,
        dead_letter="WorkDlq",
        max_receive_count=5,
        fifo=False,
    )
    # SQS's own defaults where the template sets nothing.
    assert queues["WorkDlq"] == QueueSpec("WorkDlq", 30, 0, None, None, fifo=False)
    # RedrivePolicy may also be written as a JSON string.
    assert (queues["Ordered"].dead_letter, queues["Ordered"].max_receive_count) == ("WorkDlq", 3)
    assert queues["Ordered"].fifo


def test_sqs_events_carry_the_event_source_mapping_settings(tmp_path: Path) -> None:
    events = _load(tmp_path, QUEUES).functions["Worker"].sqs_events

    assert events == (
        SqsEventSpec(
            name="Work",
            queue="Work",
            batch_size=5,
            batching_window_s=2,
            report_batch_item_failures=True,
            max_concurrency=10,
        ),
        SqsEventSpec(name="Dead", queue="WorkDlq"),
    )
    assert events[1].batch_size == 10
    assert events[1].batching_window_s == 0
    assert not events[1].report_batch_item_failures
    assert events[1].max_concurrency is None


def test_an_sqs_event_on_a_queue_outside_the_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Worker\.Work polls 'Elsewhere'"):
        _load(tmp_path, QUEUES.replace("!GetAtt Work.Arn", "!GetAtt Elsewhere.Arn"))


def test_an_sqs_event_on_a_literal_arn_is_refused(tmp_path: Path) -> None:
    literal = "arn:aws:sqs:eu-west-1:000000000000:work"
    with pytest.raises(ValueError, match=r"Events\.Work\.Properties\.Queue must be !GetAtt"):
        _load(tmp_path, QUEUES.replace("!GetAtt Work.Arn", literal))


def test_a_redrive_to_a_missing_queue_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Work redrives to 'Gone'"):
        _load(tmp_path, QUEUES.replace("!GetAtt WorkDlq.Arn", "!GetAtt Gone.Arn"))


def test_buckets_and_outputs_are_listed(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Resources:
          Bucket: {Type: AWS::S3::Bucket}
        Outputs:
          BucketName:
            Value: !Ref Bucket
        """,
    )
    assert list(template.buckets) == ["Bucket"]
    assert template.outputs == {"BucketName": {"Ref": "Bucket"}}
    assert template.path == (tmp_path / "template.yaml").resolve()


def test_a_file_without_resources_is_not_a_template(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Resources"):
        _load(tmp_path, "Description: nothing here")


# --------------------------------------------------------------------------- resolve


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (42, "42"),
        (True, "true"),
        ({"Ref": "Bucket"}, "brief-bucket"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::brief-bucket"),
        ({"Fn::GetAtt": "Bucket.Arn"}, "arn:aws:s3:::brief-bucket"),
        ({"Fn::Sub": "${Bucket.Arn}/jobs/*"}, "arn:aws:s3:::brief-bucket/jobs/*"),
        (
            {"Fn::Sub": "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}/"},
            "https://brief-bucket.s3.eu-west-1.amazonaws.com/",
        ),
        ({"Fn::Sub": "${!Literal}-${Stage}"}, "${Literal}-dev"),
        (
            {"Fn::Sub": ["${Name}-${Arn}", {"Name": "x", "Arn": {"Ref": "Stage"}}]},
            "x-dev",
        ),
        ({"Fn::Join": ["/", [{"Ref": "Bucket"}, "jobs", 1]]}, "brief-bucket/jobs/1"),
        (
            {"Fn::Join": ["", [{"Fn::Sub": "${Stage}-"}, {"Fn::GetAtt": ["IntakeQueue", "Arn"]}]]},
            "dev-arn:aws:sqs:eu-west-1:000000000000:intake",
        ),
    ],
)
def test_resolve_turns_intrinsics_into_strings(value: object, expected: str) -> None:
    assert resolve(value, REFS, ATTRS) == expected


def test_resolve_names_an_unknown_ref() -> None:
    with pytest.raises(ValueError, match=r"cannot resolve Ref 'Nope'.*known: .*Bucket"):
        resolve({"Ref": "Nope"}, REFS, ATTRS)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"Fn::Sub": "${Nope}"}, "Ref 'Nope'"),
        ({"Fn::Sub": "${Bucket.DomainName}"}, "Fn::GetAtt Bucket.DomainName"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "Fn::GetAtt Queue.Arn"),
        ({"Fn::If": ["IsProd", "a", "b"]}, "Fn::If"),
        ({"Fn::Join": [",", {"Fn::Split": [",", "a,b"]}]}, "Fn::Join"),
        (["a", "list"], "['a', 'list']"),
    ],
)
def test_resolve_names_what_it_cannot_resolve(value: object, named: str) -> None:
    with pytest.raises(ValueError, match="^cannot resolve " + re.escape(named)):
        resolve(value, REFS, ATTRS)


# --------------------------------------------------------------------------- finding


def test_find_template_walks_up_to_the_nearest_template(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    nested = tmp_path / "functions" / "api"
    nested.mkdir(parents=True)
    (nested / "app.py").write_text("", encoding="utf-8")

    found = tmp_path.resolve() / "template.yaml"
    assert find_template(nested) == found
    assert find_template(nested / "app.py") == found


def test_find_template_defaults_to_this_repositorys_template() -> None:
    repository = Path(__file__).resolve().parents[2]
    assert find_template() == repository / "template.yaml"
