"""Cold start: each function's module imported in a fresh interpreter, with the layer on the
path, as Lambda's init does (bytecode already compiled, as `make build` ships it); and how
long the `brief` command takes to start, which a user waits for on every call."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("api", "research", "summarize", "combine", "deadletter")

# Import the handler module by path, under the name Lambda gives it, and print the seconds.
_PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(time.perf_counter() - started)
"""


async def _once(name: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROBE,
        str(ROOT / "functions" / name / "app.py"),
        cwd=str(ROOT / "functions" / name),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"importing functions/{name}/app.py failed: {err.decode()[-500:]}")
    return float(out.decode().strip().splitlines()[-1])


async def cold_starts(runs: int = 5) -> dict[str, dict[str, float | list[float]]]:
    """Median import time (ms) of each function over `runs` fresh processes, one at a time
    (the first, which may compile bytecode, is not counted)."""
    results: dict[str, dict[str, float | list[float]]] = {}
    for name in FUNCTIONS:
        await _once(name)
        samples = [await _once(name) * 1000 for _ in range(runs)]
        results[name] = {"median_ms": statistics.median(samples), "samples_ms": samples}
    return results


# `brief status JOB` against a loopback port nothing listens on: the real command's start
# (interpreter, parser, HTTP client, one refused connection), without a server's time.
def _cli_probe() -> tuple[str, ...]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job = "0123456789abcdef0123456789abcdef"
    return ("-m", "brief_cli.cli", "status", job, "--api", f"http://127.0.0.1:{port}")


async def _wall_ms(*args: str, ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode not in ok:
        raise RuntimeError(f"{' '.join(args)} failed: {err.decode()[-500:]}")
    return (time.perf_counter() - started) * 1000


async def cli_start(runs: int = 5) -> dict[str, float | list[float]]:
    """Median wall time (ms) of `brief status JOB` in a fresh process (it exits 1: nothing
    listens), beside a bare interpreter's start (`python -c pass`) for scale; the first run
    is not counted."""
    probe = _cli_probe()
    await _wall_ms(*probe, ok=(1,))
    samples = [await _wall_ms(*probe, ok=(1,)) for _ in range(runs)]
    bare = [await _wall_ms("-c", "pass") for _ in range(runs)]
    return {
        "median_ms": statistics.median(samples),
        "python_ms": statistics.median(bare),
        "samples_ms": samples,
    }
