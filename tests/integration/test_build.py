"""What `sam build` produces runs by itself under Python 3.12, as Lambda would run it.

Each function is imported from the build output alone, in a fresh `python3.12 -I -S`
process whose only paths besides the standard library are the function's directory
(`/var/task`) and the layer's `python/` (`/opt/python`): a module that is missing from the
layer, built for another Python, or only present in the development venv fails here, not
after a deploy. Each then handles events against moto, with Lambda's environment set, so
it logs and emits metrics as it would in AWS.

`make build` makes `.aws-sam/build` (and `make test` runs it first); without it these
tests are skipped, saying so.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from brief.api.auth import settings_entry
from brief_local.template import Template, find_template
from brief_testing.pages import PageServer

from .test_handlers import EVENTS_OF, Stack, api_event, event

ROOT = Path(__file__).parents[2]
BUILD = Path(os.environ.get("BRIEF_BUILD_DIR", ROOT / ".aws-sam/build"))
TEMPLATE = Template.load(find_template())
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # 250 MB: function and layers, unzipped

pytestmark = pytest.mark.skipif(
    not (BUILD / "template.yaml").is_file(),
    reason=f"no build in {BUILD}: run `make build` (`make test` does)",
)

# Runs in the fresh interpreter: imports the handler as Lambda's bootstrap does, times the
# import (the cold start's init), invokes it once and writes what happened to argv[5].
DRIVER = """
import importlib, json, sys, sysconfig, time
task, layer, handler, event_path, out = sys.argv[1:6]
sys.path[:0] = [task, layer]
module_name, _, attribute = handler.rpartition(".")
started = time.perf_counter()
module = importlib.import_module(module_name)
init_ms = (time.perf_counter() - started) * 1000

class Context:
    function_name = "brief-build-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:brief-build-test"
    memory_limit_in_mb = 1024
    aws_request_id = "8f2a6c1e-0d3b-4e5f-9a7b-6c5d4e3f2a1b"
    log_group_name = "/aws/lambda/brief-build-test"
    log_stream_name = "2026/11/26/[$LATEST]0123456789abcdef"
    def get_remaining_time_in_millis(self):
        return 30000

with open(event_path) as stream:
    response = getattr(module, attribute)(json.load(stream), Context())
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(
    name
    for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None) and not m.__file__.startswith((task, layer, *stdlib))
)
with open(out, "w") as stream:
    json.dump({"init_ms": init_ms, "response": response, "outside": outside}, stream)
"""


# Runs under Python 3.12 (a .pyc's source hash is keyed by the interpreter's magic number).
BYTECODE_CHECK = """
import importlib.util, json, pathlib, sys
stale, sources = [], list(pathlib.Path(sys.argv[1]).rglob("*.py"))
for source in sources:
    cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        stale.append(f"{source}: no {cached.name}")
        continue
    header = cached.read_bytes()[:16]
    if not int.from_bytes(header[4:8], "little") & 0b1:
        stale.append(f"{source}: timestamp-based .pyc")
    elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
        stale.append(f"{source}: .pyc does not match the source")
print(json.dumps([len(sources), stale]))
"""


@functools.cache
def python312() -> str | None:
    """Lambda's Python: `python3.12` on PATH, else pyenv's newest 3.12 (as the Makefile)."""
    for command, env in (
        (["python3.12"], {}),
        (["pyenv", "exec", "python3.12"], {"PYENV_VERSION": _pyenv_latest("3.12") or ""}),
    ):
        if shutil.which(command[0]) is None:
            continue
        found = subprocess.run(  # noqa: S603 - fixed commands
            [*command, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=False,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def _pyenv_latest(prefix: str) -> str | None:
    if shutil.which("pyenv") is None:
        return None
    found = subprocess.run(  # noqa: S603 - a fixed command
        ["pyenv", "latest", prefix],  # noqa: S607 - pyenv is found on PATH
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or None


API_KEY = "ci-test-key-0123456789"


def _handler_file(handler: str, module: str) -> str:
    """The file a function's Handler names: a module, or a script run by the web adapter."""
    return handler if handler.endswith(".sh") else f"{module.replace('.', '/')}.py"


def layer_dir() -> Path:
    return BUILD / "CoreLayer" / "python"


def lambda_env(stack: Stack, logical_id: str) -> dict[str, str]:
    """What Lambda puts in the function's environment: its own variables (the template's
    literal ones, the stack's names for the rest) and the runtime's."""
    spec = TEMPLATE.functions[logical_id]
    literal = {k: v for k, v in spec.environment.items() if isinstance(v, str)}
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_FUNCTION_NAME": f"brief-{logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(BUILD / logical_id),
        **literal,
        **stack.env,
        # As deployed, the API admits only callers with a key: this test is one.
        "BRIEF_API_KEYS": settings_entry("ci", API_KEY),
    }


def invoke_built(
    stack: Stack, logical_id: str, payload: dict[str, Any], tmp_path: Path
) -> dict[str, Any]:
    """Cold-start the built function in a fresh Python 3.12 and invoke it once."""
    interpreter = python312()
    if interpreter is None:
        pytest.skip("python3.12 is not on PATH nor in pyenv")
    spec = TEMPLATE.functions[logical_id]
    if spec.http_api:
        headers = {**payload.get("headers", {}), "authorization": f"Bearer {API_KEY}"}
        payload = {**payload, "headers": headers}
    event_path = tmp_path / f"{logical_id}-event.json"
    event_path.write_text(json.dumps(payload))
    out = tmp_path / f"{logical_id}-result.json"
    done = subprocess.run(  # noqa: S603 - the build's own interpreter and files
        [
            interpreter,
            "-I",  # no PYTHON* variables, no user site, no current directory
            "-S",  # no site-packages: only what the build holds
            "-B",  # leave the build output as it is
            "-c",
            DRIVER,
            str(BUILD / logical_id),
            str(layer_dir()),
            spec.handler,
            str(event_path),
            str(out),
        ],
        env=lambda_env(stack, logical_id),
        cwd=BUILD / logical_id,
        capture_output=True,
        text=True,
        timeout=spec.timeout + 30,
        check=False,
    )
    assert done.returncode == 0, f"{logical_id} failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["outside"] == [], f"{logical_id} imported from outside the build"
    result["stdout"] = done.stdout
    return result


@pytest.fixture
def stack(moto_endpoint: str) -> Stack:
    return Stack(moto_endpoint)


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer().start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- artifacts


def test_the_build_holds_every_function_and_the_layer() -> None:
    missing = [
        logical_id
        for logical_id, spec in TEMPLATE.functions.items()
        if not (BUILD / logical_id / _handler_file(spec.handler, spec.module)).is_file()
    ]
    assert not missing, f"functions not built: {missing}"
    assert (layer_dir() / "brief" / "__init__.py").is_file(), "the layer has no brief package"


def test_every_module_has_current_bytecode_for_python_3_12() -> None:
    """Hash-based .pyc for every .py: SAM zips files dated 1980, so timestamp-based .pyc
    would be stale in Lambda and recompiled (and not kept: /var/task is read-only) on every
    cold start. An unchecked-hash .pyc is used as is, so it must match its source."""
    interpreter = python312()
    if interpreter is None:
        pytest.skip("python3.12 is not on PATH nor in pyenv")
    done = subprocess.run(  # noqa: S603 - the build's own interpreter
        [interpreter, "-I", "-S", "-c", BYTECODE_CHECK, str(BUILD)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    checked, stale = json.loads(done.stdout)
    assert checked > 100
    assert not stale, "\n".join(stale[:20])


def test_each_function_fits_lambdas_size_limit() -> None:
    def size(directory: Path) -> int:
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())

    layer = size(layer_dir())
    too_big = {
        logical_id: layer + size(BUILD / logical_id)
        for logical_id in TEMPLATE.functions
        if layer + size(BUILD / logical_id) > LAMBDA_UNZIPPED_LIMIT
    }
    assert not too_big, f"over 250 MB unzipped: {too_big}"


# --------------------------------------------------------------------------- invocations


@pytest.mark.parametrize(
    ("name", "logical_id"),
    [(name, logical_id) for logical_id, names in EVENTS_OF.items() for name in names],
)
def test_each_built_function_handles_its_sample_event(
    name: str, logical_id: str, stack: Stack, tmp_path: Path
) -> None:
    result = invoke_built(stack, logical_id, event(name), tmp_path)
    response = result["response"]
    if logical_id == "ApiFunction":
        assert response["statusCode"] == (202 if name == "api-create-job.json" else 404)
        return
    if logical_id == "SweeperFunction":  # an empty bucket: nothing open, nothing to fail
        assert response["failed"] == [], response
        return
    ids = [r["messageId"] for r in event(name)["Records"]]
    failed = [] if logical_id == "DeadletterFunction" else ids  # no such job in this bucket
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}


def test_the_stream_function_serves_the_api_with_the_uvicorn_it_brings(stack: Stack) -> None:
    """As run.sh starts it behind the web adapter: `python -m uvicorn app:app`, with the
    function's directory and the layer as its only paths besides the standard library."""
    interpreter = python312()
    if interpreter is None:
        pytest.skip("python3.12 is not on PATH nor in pyenv")
    task = BUILD / "StreamFunction"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["-S", "-B", "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "app:app"]
    server = subprocess.Popen(  # noqa: S603 - the build's own interpreter and files
        [interpreter, *command],
        env={**lambda_env(stack, "StreamFunction"), "PYTHONPATH": f"{task}:{layer_dir()}"},
        cwd=task,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        health = None
        while health is None and server.poll() is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"{url}/health", timeout=5)
            except httpx.ConnectError:
                time.sleep(0.2)
        assert health is not None, f"StreamFunction did not start:\n{server.communicate()[0]}"
        assert health.json() == {"status": "ok"}
        key = {"authorization": f"Bearer {API_KEY}"}
        assert httpx.get(f"{url}/jobs/{'0' * 32}", headers=key, timeout=30).status_code == 404
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_the_built_functions_run_a_job_to_its_report(
    stack: Stack, pages: PageServer, tmp_path: Path
) -> None:
    body = {
        "question": "How do honeybees decide where to build a new nest?",
        "sources": pages.pages()[:2],
    }
    created = invoke_built(stack, "ApiFunction", api_event("POST", "/jobs", body), tmp_path)
    assert created["response"]["statusCode"] == 202, created["response"]
    job_id = json.loads(created["response"]["body"])["job_id"]

    for logical_id, queue in (
        ("ResearchFunction", "intake"),
        ("SummarizeFunction", "summarize"),
        ("CombineFunction", "combine"),
    ):
        records = stack.take(queue)
        assert records, f"nothing on the {queue} queue for {logical_id}"
        result = invoke_built(stack, logical_id, {"Records": records}, tmp_path)
        assert result["response"] == {"batchItemFailures": []}, result["stdout"]
        # In Lambda's environment the layer's Powertools writes EMF: the cold start, at least.
        written = [json.loads(line) for line in result["stdout"].splitlines() if line[:2] == '{"']
        assert any("ColdStart" in line for line in written if "_aws" in line), result["stdout"]

    view = invoke_built(stack, "ApiFunction", api_event("GET", f"/jobs/{job_id}"), tmp_path)
    assert json.loads(view["response"]["body"])["state"] == "done"
    report = stack.s3.get_object(Bucket=stack.bucket, Key=f"jobs/{job_id}/report.md")
    assert "[2]" in report["Body"].read().decode()
