"""Cold start: each function's module imported in a fresh interpreter, with the layer on the
path, as Lambda's init does (bytecode already compiled, as `make build` ships it)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
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
