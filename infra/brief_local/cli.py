"""`brief`: the command line for the local stack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from brief_local.stack import LocalStack, StackOptions


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `brief` console script."""
    parser = argparse.ArgumentParser(prog="brief", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run one research job on the local stack, offline")
    local = commands.add_parser("local", help="run the local stack until interrupted")
    local.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    local.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="a host that may resolve to a private address (e.g. 127.0.0.1 for local pages)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from brief_local.demo import run_demo

        return asyncio.run(run_demo())
    try:
        return asyncio.run(_serve(args.port, args.allow_host))
    except KeyboardInterrupt:
        return 130


async def _serve(port: int, allowed: list[str]) -> int:
    env = {"BRIEF_ALLOWED_HOSTS": ",".join(allowed)} if allowed else {}
    async with LocalStack(StackOptions(api_port=port, environment=env)) as stack:
        print(f"Brief's API: {stack.api_url}  (OpenAPI at {stack.api_url}/docs)")
        print(f"AWS endpoint (moto): {stack.endpoint}   bucket: {stack.bucket}")
        print("Ctrl-C to stop.")
        await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
