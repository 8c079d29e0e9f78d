"""`brief invoke`: a function from the template, run once under AWS's runtime interface
client against the local Runtime API, answers as Lambda would: its response, Lambda's error
object for an exception, "Task timed out" past its Timeout, and the environment Lambda sets."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from brief_local.invoke import Invocation, invoke, main, provision
from brief_local.template import Template

EVENTS = Path(__file__).parents[1] / "events"

HANDLERS = """
import json, os, sys, time

def echo(event, context):
    print("echo got", json.dumps(event))
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_arn": context.invoked_function_arn,
        "env": {k: os.environ.get(k) for k in (
            "BUCKET", "QUEUE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_EXECUTION_ENV", "AWS_ENDPOINT_URL", "HOSTNAME_OF_THE_DEVELOPER")},
    }

def slow(event, context):
    print("starting something long")
    time.sleep(30)

def fail(event, context):
    raise ValueError("the event has no question")

def exit(event, context):
    sys.exit(3)
"""

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: fn/
    Timeout: 5
    Environment:
      Variables:
        BUCKET: !Ref Bucket
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Queue:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.echo
      MemorySize: 256
      Environment:
        Variables:
          QUEUE: !GetAtt Queue.Arn
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.slow
      Timeout: 1
  FailingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.fail
  ExitingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.exit
  MisnamedFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: nowhere.handler
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("stack")
    (root / "fn").mkdir()
    (root / "fn" / "app.py").write_text(textwrap.dedent(HANDLERS))
    (root / "template.yaml").write_text(TEMPLATE)
    return Template.load(root / "template.yaml")


@pytest.fixture
def env(template: Template, moto_endpoint: str) -> dict[str, str]:
    return provision(template, moto_endpoint)


def run(
    template: Template, env: dict[str, str], logical_id: str, event: object = None
) -> Invocation:
    spec = template.functions[logical_id]
    variables = {k: env[k] for k in ("AWS_ENDPOINT_URL", *spec.environment)}
    return invoke(spec, {} if event is None else event, variables)


def test_the_response_and_the_environment_are_lambdas(
    template: Template, env: dict[str, str], moto_endpoint: str
) -> None:
    result = run(template, env, "EchoFunction", {"question": "why?"})
    assert result.error is None
    payload = result.payload
    assert payload["event"] == {"question": "why?"}
    assert payload["request_id"] == result.request_id
    assert 4_000 < payload["remaining_ms"] <= 5_000  # the deadline Lambda sent: Timeout 5
    assert payload["function_arn"].endswith(":function:EchoFunction")
    assert payload["env"] == {
        "BUCKET": "brief-local-bucket",
        "QUEUE": "arn:aws:sqs:us-east-1:123456789012:brief-local-Queue",
        "AWS_LAMBDA_FUNCTION_NAME": "EchoFunction",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "HOSTNAME_OF_THE_DEVELOPER": None,  # nothing else of the caller's environment leaks
    }
    assert 'echo got {"question": "why?"}' in result.logs
    assert result.logs[-2:][0] == f"END RequestId: {result.request_id}"
    assert result.logs[-1].startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    assert "Memory Size: 256 MB" in result.logs[-1]


def test_a_handler_past_its_timeout_is_killed_and_reported_as_lambda_does(
    template: Template, env: dict[str, str]
) -> None:
    result = run(template, env, "SlowFunction")
    assert result.error == "Unhandled"
    assert result.payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert 1_000 <= result.duration_ms < 3_000
    assert any(line.endswith("Task timed out after 1.00 seconds") for line in result.logs)


def test_a_handler_exception_is_lambdas_error_object(
    template: Template, env: dict[str, str]
) -> None:
    result = run(template, env, "FailingFunction")
    assert result.error == "Unhandled"
    assert result.payload["errorType"] == "ValueError"
    assert result.payload["errorMessage"] == "the event has no question"
    assert result.payload["requestId"] == result.request_id
    assert any("raise ValueError" in frame for frame in result.payload["stackTrace"])


def test_a_runtime_that_exits_and_one_that_cannot_start(
    template: Template, env: dict[str, str]
) -> None:
    exited = run(template, env, "ExitingFunction")
    assert exited.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {exited.request_id} Error: Runtime exited with error: "
        "exit status 3",
    }
    misnamed = run(template, env, "MisnamedFunction")
    assert misnamed.error == "Unhandled"
    assert misnamed.payload["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'nowhere'" in misnamed.payload["errorMessage"]


def test_brief_invoke_runs_the_api_on_its_sample_event(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ApiFunction", "-e", str(EVENTS / "api-get-job.json"), "--endpoint", moto_endpoint]
    # As deployed, with no API keys configured, the API admits no one.
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    locked = json.loads(out)
    assert locked["statusCode"] == 401
    assert "REPORT RequestId: " in err
    # With anonymous callers allowed (as on the local stack), the unknown job is a 404.
    assert main([*argv, "--env", "BRIEF_REQUIRE_AUTH=false"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == "application/problem+json"


def test_brief_invoke_exits_1_with_the_error_on_stdout(
    template: Template, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["FailingFunction", "-t", str(template.path), "--endpoint", moto_endpoint]
    assert main(argv) == 1
    assert json.loads(capsys.readouterr().out)["errorType"] == "ValueError"
    assert main(["NoSuchFunction", "-t", str(template.path), "--endpoint", moto_endpoint]) == 2
    assert "no function 'NoSuchFunction'" in capsys.readouterr().err
