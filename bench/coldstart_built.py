"""Cold start of each *built* function under Python 3.12, as Lambda's init runs it:
`python -m bench.coldstart_built [RUNS]` after `make build`.

Each run is a fresh `python3.12 -I` whose path is only the function's build directory and the
layer's `python/` (where Lambda mounts it at /opt/python), importing the handler module from
the precompiled bytecode `make build` ships. Prints the median import time per function.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
FUNCTIONS = (
    "ApiFunction",
    "ResearchFunction",
    "SummarizeFunction",
    "CombineFunction",
    "DeadletterFunction",
)

_PROBE = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
started = time.perf_counter()
import app
print(time.perf_counter() - started)
"""


def python312() -> str:
    """The real python3.12 binary `make build` used (on PATH, or through pyenv's shim)."""
    shim = shutil.which("python3.12")
    if shim is None:
        sys.exit("python3.12 is not on PATH (e.g. PYENV_VERSION=3.12.1)")
    found = subprocess.run(  # noqa: S603 - the interpreter the user pointed at
        [shim, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
    )
    if found.returncode != 0:
        sys.exit(f"python3.12 did not start: {found.stderr.strip()} (try PYENV_VERSION=3.12.1)")
    return found.stdout.strip()


def once(python: str, function: str) -> float:
    """Seconds to import the function's handler module in a fresh interpreter."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and build output
        [python, "-I", "-c", _PROBE, str(BUILD / function), str(BUILD / "CoreLayer" / "python")],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="?", type=int, default=7)
    args = parser.parse_args(argv)
    if not (BUILD / "CoreLayer").is_dir():
        sys.exit("no build: run `make build` first")
    python = python312()
    for function in FUNCTIONS:
        times = [once(python, function) for _ in range(args.runs)]
        print(f"{function:<20} {statistics.median(times) * 1000:6.0f} ms (median of {args.runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
