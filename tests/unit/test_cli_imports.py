"""`brief status` is a client of the API: starting it loads neither the local stack (the AWS
emulator), nor the fakes, nor what only they need (yaml, moto, the AWS SDK)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from brief_cli.cli import main

FORBIDDEN = ("brief_local", "brief_testing", "yaml", "moto", "botocore", "aioboto3", "uvicorn")

# Runs `brief status` against a port nothing listens on, then reports the command's exit
# status, what it printed and every module it loaded.
PROBE = """
import contextlib, io, json, sys
from brief_cli.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = main(sys.argv[1:])
loaded = sorted(name for name, module in sys.modules.items() if module is not None)
print(json.dumps({"code": code, "stderr": err.getvalue(), "modules": loaded}))
"""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _loaded(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in FORBIDDEN]


def test_brief_status_loads_no_emulator_fake_or_aws_sdk_module() -> None:
    api = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run(  # noqa: S603 - this interpreter, the probe above
        [sys.executable, "-c", PROBE, "status", "0123abcd", "--api", api],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)

    assert answer["code"] == 1
    assert f"nothing is listening at {api}" in answer["stderr"]
    assert _loaded(answer["modules"]) == []
    # httpx's own command line (click, rich, pygments) is ~0.2 s of a 0.3 s budget.
    assert [m for m in ("httpx._main", "click", "rich", "pygments") if m in answer["modules"]] == []


def test_brief_status_help_loads_not_even_the_http_client() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom brief_cli.cli import main\ntry:\n    main(['status', '--help'])\n"
            "except SystemExit:\n    print(' '.join(sorted(sys.modules)), file=sys.stderr)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = done.stderr.split()

    assert "usage: brief status" in done.stdout
    assert _loaded(modules) == []
    assert "httpx" not in modules
    assert "asyncio" not in modules


def test_a_deferred_command_takes_its_options_and_its_run_from_its_module(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_help:
        main(["chaos", "--help"])
    assert exit_help.value.code == 0
    assert "--crash-after-write RATE" in capsys.readouterr().out

    assert main(["invoke", "NoSuchFunction"]) == 2
    assert "brief invoke: no function 'NoSuchFunction' in" in capsys.readouterr().err
