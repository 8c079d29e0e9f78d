"""`brief invoke FUNCTION -e EVENT.json`: one invocation, as Lambda runs it, without Docker.

The function comes from template.yaml (CodeUri, Handler, Environment, Timeout, MemorySize,
Runtime). It runs in a process of its own under AWS's runtime interface client
(`python -m awslambdaric app.handler`, the bootstrap of Lambda's Python base images), which
talks to a local Runtime API served here: `GET /2018-06-01/runtime/invocation/next` hands it
the event with Lambda's headers, and it posts back `/invocation/{id}/response`,
`/invocation/{id}/error` or `/init/error`.

The function's environment is resolved against moto: one started here, or a running one
(`--endpoint`, e.g. the one `brief local` prints), on which the template's bucket and queues
are created if they are missing, under the names the local stack gives them. The init phase
gets Lambda's 10 s; the handler gets the function's Timeout, then the process is killed and
the result is Lambda's "Task timed out after N seconds". The response (or the error, shaped
as Lambda's) is printed as JSON on stdout; the function's own output, and Lambda's START,
END and REPORT lines, go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from brief_local.template import FunctionSpec, Template, find_template, resolve

__all__ = ["Invocation", "RuntimeAPI", "invoke", "main", "provision"]

REGION = "us-east-1"
ACCOUNT = "123456789012"
INIT_TIMEOUT_S = 10.0  # Lambda's limit on a function's init phase (on-demand)
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit on a synchronous response payload
_PREFIX = "/2018-06-01/runtime"
# Variables a developer's shell may need to reach AWS or find certificates; nothing else of
# this process's environment reaches the function, as nothing of it would in Lambda.
_PASSED_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "AWS_CA_BUNDLE",
)


# --------------------------------------------------------------------------- Runtime API


@dataclass
class _Pending:
    request_id: str
    event: bytes
    timeout_s: float
    function_arn: str
    trace_id: str
    delivered_at: float | None = None
    """time.monotonic() when the runtime took the event: the handler's clock starts here."""
    outcome: tuple[str, bytes, str | None] | None = None
    """("response" | "error", body, error type header), once the runtime posts it."""


class RuntimeAPI:
    """Lambda's Runtime API for one execution environment, on loopback.

    `submit` queues an invocation; the runtime's `next` call blocks until there is one.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._changed = threading.Condition()
        self._queue: list[_Pending] = []
        self._invocations: dict[str, _Pending] = {}
        self.init_error: tuple[bytes, str | None] | None = None
        self.ready = False
        """True once the runtime has asked for its first event: its init phase is over."""
        handler = type("Handler", (_RuntimeHandler,), {"api": self})
        self._server = _Server((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.address = f"{host}:{self._server.server_address[1]}"

    def __enter__(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    _closed = False

    def submit(self, event: bytes, *, timeout_s: float, function_arn: str) -> _Pending:
        """Queue one invocation for the runtime's next `next`."""
        pending = _Pending(
            request_id=str(uuid.uuid4()),
            event=event,
            timeout_s=timeout_s,
            function_arn=function_arn,
            trace_id=_trace_id(),
        )
        with self._changed:
            self._queue.append(pending)
            self._invocations[pending.request_id] = pending
            self._changed.notify_all()
        return pending

    def wait(self, predicate: Any, timeout_s: float) -> bool:
        """Wait until `predicate()` holds (True) or `timeout_s` passes (False)."""
        with self._changed:
            return bool(self._changed.wait_for(predicate, timeout=max(timeout_s, 0)))

    def notify(self) -> None:
        """Wake waiters to look again (the function's process may have exited)."""
        with self._changed:
            self._changed.notify_all()

    # The handler's side -------------------------------------------------------------

    def _next(self) -> _Pending | None:
        with self._changed:
            self.ready = True
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._queue or self._closed)
            if self._closed:
                return None
            pending = self._queue.pop(0)
            pending.delivered_at = time.monotonic()
            return pending

    def _post(self, request_id: str, kind: str, body: bytes, error_type: str | None) -> int:
        with self._changed:
            pending = self._invocations.get(request_id)
            if pending is None or pending.delivered_at is None:
                return HTTPStatus.BAD_REQUEST
            if pending.outcome is not None:
                return HTTPStatus.BAD_REQUEST  # Lambda: "Invalid state transition"
            if kind == "response" and len(body) > MAX_RESPONSE_BYTES:
                error = {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": f"Response payload size ({len(body)} bytes) exceeded "
                    f"maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                }
                pending.outcome = ("error", json.dumps(error).encode(), error["errorType"])
                self._changed.notify_all()
                return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            pending.outcome = (kind, body, error_type)
            self._changed.notify_all()
            return HTTPStatus.ACCEPTED

    def _post_init_error(self, body: bytes, error_type: str | None) -> int:
        with self._changed:
            self.init_error = (body, error_type)
            self._changed.notify_all()
        return HTTPStatus.ACCEPTED


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed mid-request (a timeout, the end of an invocation) is expected."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime client's libcurl expects
    api: RuntimeAPI

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the runtime's requests are not the function's logs."""

    def do_GET(self) -> None:
        """`next`: block until there is an invocation, then hand it over with its headers."""
        if self.path != f"{_PREFIX}/invocation/next":
            self._answer(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
            return
        pending = self.api._next()
        if pending is None:  # shutting down
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"errorMessage": "shutting down"})
            return
        assert pending.delivered_at is not None
        deadline_ms = int((time.time() + pending.timeout_s) * 1000)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(pending.event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", pending.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", pending.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", pending.trace_id)
        self.end_headers()
        self.wfile.write(pending.event)

    def do_POST(self) -> None:
        """`response`, `error` and `init/error`."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        parts = self.path.removeprefix(_PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            status = self.api._post_init_error(body, error_type)
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            status = self.api._post(parts[1], parts[2], body, error_type)
        else:
            status = HTTPStatus.NOT_FOUND
        if status == HTTPStatus.ACCEPTED:
            self._answer(status, {"status": "OK"})
        else:
            self._answer(status, {"errorMessage": f"{self.path}: refused ({status})"})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _trace_id() -> str:
    epoch = f"{int(time.time()):08x}"
    return f"Root=1-{epoch}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


# --------------------------------------------------------------------------- invocation


@dataclass
class Invocation:
    """What one invocation returned, as `aws lambda invoke` would report it."""

    request_id: str
    payload: Any
    """The handler's response, or Lambda's error object (errorType, errorMessage, ...)."""
    error: str | None = None
    """None when the handler returned; else "Unhandled", as Lambda's X-Amz-Function-Error."""
    duration_ms: float = 0.0
    init_ms: float = 0.0
    max_memory_mb: int | None = None
    logs: list[str] = field(default_factory=list)


def invoke(
    spec: FunctionSpec,
    event: Any,
    environment: Mapping[str, str],
    *,
    python: str = sys.executable,
    log: IO[str] | None = None,
) -> Invocation:
    """Run `spec`'s handler once on `event` under awslambdaric; never raises for the
    function's own failures (they are in the result, as Lambda reports them)."""
    function_name = spec.logical_id
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(
        {
            "TZ": ":UTC",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]"
            + secrets.token_hex(16),
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(environment)
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if log is not None:
            log.write(line + "\n")
            log.flush()

    with RuntimeAPI() as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        pending = api.submit(json.dumps(event).encode(), timeout_s=spec.timeout, function_arn=arn)
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - this interpreter, the template's handler
            [python, "-m", "awslambdaric", spec.handler],
            cwd=spec.code_uri,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        pump = threading.Thread(target=_pump, args=(process, emit, api), daemon=True)
        pump.start()

        def stop() -> None:
            """End the environment (nothing reuses it) and take the rest of its output."""
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            pump.join(timeout=5)
            if process.stdout is not None:
                process.stdout.close()

        try:
            return _await(api, pending, process, spec, started, stop, emit, lines)
        finally:
            stop()


def _pump(process: subprocess.Popen[str], emit: Callable[[str], None], api: RuntimeAPI) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        emit(line.rstrip("\n"))
    api.notify()  # the process has closed its output: it exited


def _await(
    api: RuntimeAPI,
    pending: _Pending,
    process: subprocess.Popen[str],
    spec: FunctionSpec,
    started: float,
    stop: Callable[[], None],
    emit: Callable[[str], None],
    lines: list[str],
) -> Invocation:
    request_id = pending.request_id

    def finished(payload: Any, error: str | None, init_ms: float, duration_ms: float) -> Invocation:
        memory = _max_memory_mb(process.pid)
        stop()
        emit(f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {spec.memory} MB\t"
        )
        if memory is not None:
            report += f"Max Memory Used: {memory} MB\t"
        emit(report + f"Init Duration: {init_ms:.2f} ms")
        return Invocation(request_id, payload, error, duration_ms, init_ms, memory, lines)

    # Init: until the runtime asks for its first event, or reports that it could not start.
    api.wait(
        lambda: api.ready or api.init_error is not None or process.poll() is not None,
        INIT_TIMEOUT_S,
    )
    init_ms = (time.monotonic() - started) * 1000
    if api.init_error is not None:
        body, error_type = api.init_error
        return finished(_error_payload(body, error_type), "Unhandled", init_ms, 0.0)
    if not api.ready:
        if process.poll() is None:
            message = f"INIT timed out after {INIT_TIMEOUT_S:.2f} seconds"
            return finished(_sandbox_error(request_id, message), "Unhandled", init_ms, 0.0)
        return finished(_exit_error(request_id, process), "Unhandled", init_ms, 0.0)

    emit(f"START RequestId: {request_id} Version: $LATEST")
    api.wait(lambda: pending.delivered_at is not None, 1.0)
    delivered = pending.delivered_at or time.monotonic()
    done = api.wait(
        lambda: pending.outcome is not None or process.poll() is not None,
        delivered + spec.timeout - time.monotonic(),
    )
    duration_ms = (time.monotonic() - delivered) * 1000
    if pending.outcome is not None:
        kind, body, error_type = pending.outcome
        if kind == "response":
            return finished(json.loads(body or b"null"), None, init_ms, duration_ms)
        return finished(_error_payload(body, error_type), "Unhandled", init_ms, duration_ms)
    if not done:
        message = f"Task timed out after {spec.timeout:.2f} seconds"
        emit(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {request_id} {message}")
        return finished(_sandbox_error(request_id, message), "Unhandled", init_ms, duration_ms)
    return finished(_exit_error(request_id, process), "Unhandled", init_ms, duration_ms)


def _error_payload(body: bytes, error_type: str | None) -> Any:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"errorMessage": body.decode(errors="replace")}
    if isinstance(payload, dict) and error_type and not payload.get("errorType"):
        payload["errorType"] = error_type
    return payload


def _sandbox_error(request_id: str, message: str) -> dict[str, str]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: {message}",
    }


def _exit_error(request_id: str, process: subprocess.Popen[str]) -> dict[str, str]:
    code = process.wait(timeout=10)
    status = f"signal: {-code}" if code < 0 else f"exit status {code}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {status}",
    }


def _max_memory_mb(pid: int) -> int | None:
    """The process's peak resident memory (Linux), as REPORT's "Max Memory Used"."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return None


# --------------------------------------------------------------------------- resources


def provision(template: Template, endpoint: str) -> dict[str, str]:
    """The template's bucket and queues on the moto at `endpoint` (created where missing,
    named as the local stack names them), and every function's environment resolved against
    them: variable name -> value. Also the AWS variables that point the SDK at `endpoint`."""
    import boto3

    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",  # moto accepts any key
    }
    s3 = boto3.client("s3", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    refs: dict[str, str] = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": "brief-local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        **{name: str(value) for name, value in template.parameters.items()},
    }
    attrs: dict[tuple[str, str], str] = {}
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for logical_id in template.buckets:
        name = f"brief-local-{logical_id.lower()}"  # the local stack's name for it
        if name not in existing:
            s3.create_bucket(Bucket=name)
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    # Dead-letter queues first: a redrive policy names its DLQ's ARN.
    for queue in sorted(template.queues.values(), key=lambda q: q.dead_letter is not None):
        name = f"brief-local-{queue.logical_id}" + (".fifo" if queue.fifo else "")
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(queue.wait_time_seconds),
        }
        if queue.fifo:
            attributes["FifoQueue"] = "true"
        if queue.dead_letter is not None:
            policy = {
                "deadLetterTargetArn": attrs[(queue.dead_letter, "Arn")],
                "maxReceiveCount": queue.max_receive_count or 5,
            }
            attributes["RedrivePolicy"] = json.dumps(policy)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        refs[queue.logical_id] = url
        attrs[(queue.logical_id, "Arn")] = arn["Attributes"]["QueueArn"]
        attrs[(queue.logical_id, "QueueName")] = name
        attrs[(queue.logical_id, "QueueUrl")] = url
    resolved = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    for function in template.functions.values():
        for name, raw in function.environment.items():
            resolved[name] = resolve(raw, refs, attrs)
    return resolved


@contextlib.contextmanager
def _moto(endpoint: str | None) -> Iterator[str]:
    if endpoint is not None:
        yield endpoint
        return
    import logging

    from moto.server import ThreadedMotoServer

    from brief_local.motoserver import prepare

    prepare()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """`brief invoke`: exit 0 when the handler returned, 1 when it failed, 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog="brief invoke",
        description="Run one function from template.yaml once, under AWS's runtime "
        "interface client, on this machine (no Docker).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`brief invoke`'s arguments and `run`, for the `brief` command's subparser."""
    parser.set_defaults(run=run)
    parser.add_argument("function", help="the function's logical id, e.g. ApiFunction")
    parser.add_argument(
        "-e", "--event", help="a JSON event file ('-' for stdin); default {}", default=None
    )
    parser.add_argument("-t", "--template", type=Path, help="default: the repository's")
    parser.add_argument(
        "--endpoint",
        help="a running moto (e.g. the one `brief local` prints); default: start one",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set or override one of the function's variables (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """Carry out parsed `brief invoke` arguments."""
    template = Template.load(args.template or find_template())
    spec = template.functions.get(args.function)
    if spec is None:
        known = ", ".join(sorted(template.functions))
        print(
            f"brief invoke: no function {args.function!r} in {template.path} ({known})",
            file=sys.stderr,
        )
        return 2
    try:
        event = _read_event(args.event)
        overrides = dict(_assignment(item) for item in args.env)
    except ValueError as exc:
        print(f"brief invoke: {exc}", file=sys.stderr)
        return 2
    with _moto(args.endpoint) as endpoint:
        resolved = provision(template, endpoint)
        environment = {
            name: resolved[name]
            for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        environment.update({name: resolved[name] for name in spec.environment})
        environment.update(overrides)
        result = invoke(spec, event, environment, log=sys.stderr)
    print(json.dumps(result.payload, indent=2))
    return 0 if result.error is None else 1


def _read_event(path: str | None) -> Any:
    if path is None:
        return {}
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None


def _assignment(item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not (name and equals):
        raise ValueError(f"--env {item!r} is not NAME=VALUE")
    return name, value


if __name__ == "__main__":
    sys.exit(main())
