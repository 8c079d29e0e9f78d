"""`python -m brief_testing.fake_models [--port N] [--latency S] [--rate-limit F] ...`"""

from __future__ import annotations

import contextlib
import time

from brief_testing.fake_models.server import FakeModelServer, Faults


def main(argv: list[str] | None = None) -> None:
    """`python -m brief_testing.fake_models [--port N] [--latency S] [--rate-limit F] ...`"""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m brief_testing.fake_models",
        description="A fake model server on loopback: OpenAI, Anthropic and Bedrock.",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between deltas")
    parser.add_argument("--context", type=int, default=None, help="every model's window")
    for name in (
        "rate_limit",
        "server_error",
        "overloaded",
        "cut_stream",
        "slow",
        "invent_citation",
    ):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    faults = Faults(
        rate_limit=args.rate_limit,
        server_error=args.server_error,
        overloaded=args.overloaded,
        cut_stream=args.cut_stream,
        slow=args.slow,
        invent_citation=args.invent_citation,
        seed=args.seed,
    )
    server = FakeModelServer(
        latency_s=args.latency,
        token_delay_s=args.token_delay,
        context_tokens={"*": args.context} if args.context else None,
        faults=faults,
        port=args.port,
    )
    with server:
        print(f"fake models at {server.url} (OpenAI: {server.url}/v1, Anthropic: {server.url})")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
