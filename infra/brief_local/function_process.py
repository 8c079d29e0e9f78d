"""A Lambda execution environment in a process of its own: the child side.

`brief_local.functions.ProcessContainer` starts `python -m brief_local.function_process` and
speaks JSON lines with it. The first line on stdin sets the function up (its module is
loaded then: the init phase); each further line is one invocation, answered with
`{"result": ...}` or `{"error": "..."}`. Answers go out on the process's original stdout;
the function's own prints and logs go to stderr, as Lambda's go to its log stream. End of
input closes the container (its loop and clients) and ends the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from brief import logs
from brief.runtime import container_of
from brief_local.functions import LambdaContext, load_handler_module, prepare


def serve(requests: TextIO, answers: TextIO) -> None:
    """Set the function up from the first request, then answer each invocation in turn."""
    setup = json.loads(requests.readline())
    os.nice(setup["niceness"])
    started = time.perf_counter()
    module = load_handler_module(Path(setup["code_uri"]), setup["module"], setup["logical_id"])
    prepare(module, setup["environment"])
    handler = getattr(module, setup["attribute"])
    _answer(answers, {"init_ms": (time.perf_counter() - started) * 1000})
    while line := requests.readline():
        event = json.loads(line)["event"]
        context = LambdaContext(setup["logical_id"], setup["memory"], setup["timeout"])
        try:
            result = handler(event, context)
            _answer(answers, {"result": result})
        except Exception as exc:  # the handler's error fails the invocation, as in Lambda
            _answer(answers, {"error": f"{type(exc).__name__}: {exc}"})
    container_of(module).close()


def _answer(answers: TextIO, message: dict[str, Any]) -> None:
    answers.write(json.dumps(message) + "\n")  # a result Lambda could not serialize raises
    answers.flush()


def main() -> None:
    """Keep stdout for answers; whatever the function writes there goes to stderr instead."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logs.configure_console("WARNING")  # as `brief local` shows its threads' lines
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
