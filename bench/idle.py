"""What an idle `brief local` costs: `python -m bench.idle [--settle S] [--seconds S]`.

Starts `brief local` on a free port, lets it settle (start-up is not idleness), then sums the
CPU time (user + system, from /proc) of that process and all its descendants over the
measured window, with no job running, and prints it as a percentage of one core. CPU time is
what the processes themselves used, so other load on the machine barely changes it. Linux
only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it has gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: the fields after its ')' are unambiguous.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each process of the tree."""
    return {p: _cpu_seconds(p) for p in tree(pid)}


def role(pid: int) -> str:
    """What a process of the local stack is, by its command line: "moto" (the emulator's
    server), "function" (a function container) or "stack" (anything else: the stack's own
    process, with the API, the pollers and, in the bench, the page and model servers)."""
    try:
        command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "stack"
    if b"brief_local.motoserver" in command:
        return "moto"
    return "function" if b"brief_local.function_process" in command else "stack"


def cpu_by_role(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """CPU seconds each role used between two `tree_cpu_seconds` readings (a process that
    started between them counts whole; one that ended is missing from `after`)."""
    used = {"stack": 0.0, "moto": 0.0, "function": 0.0}
    for pid, seconds in after.items():
        used[role(pid)] += seconds - before.get(pid, 0.0)
    return used


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"brief local exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"brief local did not listen on {port} within {timeout_s:g} s")


def measure(settle_s: float, seconds: float) -> float:
    """Percent of one core that an idle `brief local` (with its children) uses."""
    port = _free_port()
    brief = Path(sys.executable).with_name("brief")
    process = subprocess.Popen(  # noqa: S603 - this venv's own command
        [str(brief), "local", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, timeout_s=120)
        time.sleep(settle_s)
        before = tree_cpu_seconds(process.pid)
        start = time.monotonic()
        time.sleep(seconds)
        after = tree_cpu_seconds(process.pid)
        elapsed = time.monotonic() - start
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    used = sum(after[p] - before.get(p, 0.0) for p in after)
    return 100 * used / elapsed


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settle", type=float, default=20, help="seconds after start-up")
    parser.add_argument("--seconds", type=float, default=60, help="seconds measured")
    args = parser.parse_args(argv)
    percent = measure(args.settle, args.seconds)
    print(f"idle brief local: {percent:.1f}% of one core over {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
