"""The loopback servers a scenario runs against, and the stack options that point at them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from brief_local.stack import StackOptions
from brief_testing.fake_models import FakeModelServer, Faults
from brief_testing.pages import SAMPLES, PageServer

QUESTION = (SAMPLES / "question.txt").read_text().strip()
MAP_MODEL = "map"  # the per-source summary model
REDUCE_MODEL = "reduce"  # the combine model


@dataclass(frozen=True)
class Latencies:
    """One scenario's fake latencies, in seconds."""

    fetch_s: float
    summarize_s: float
    combine_s: float


SEED = Latencies(fetch_s=1.0, summarize_s=3.0, combine_s=2.0)
SHORT = Latencies(fetch_s=0.1, summarize_s=0.3, combine_s=0.2)


@dataclass
class Servers:
    """The page server and the fake model server of one scenario."""

    pages: PageServer
    models: FakeModelServer
    latencies: Latencies

    def sources(self, tag: str | None = None, count: int = 5) -> list[str]:
        """`count` sample pages, each delayed by the fetch latency; a fresh `tag` makes the
        URLs new, so neither the page cache nor the summary cache has seen them."""
        tag = tag or secrets.token_hex(4)
        urls = self.pages.pages()[:count]
        return [f"{u}?delay={self.latencies.fetch_s:g}&run={tag}" for u in urls]

    def stack_options(self, **overrides: object) -> StackOptions:
        """The local stack with both stages on the fake model server (OpenAI-compatible)."""
        base = f"{self.models.url}/v1"
        stage = {"provider": "openai", "base_url": base, "api_key": "bench"}
        env = {
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_SUMMARIZE_MODEL": json.dumps({**stage, "model": MAP_MODEL}),
            "BRIEF_COMBINE_MODEL": json.dumps({**stage, "model": REDUCE_MODEL}),
        }
        options = StackOptions(environment=env, moto_process=True)  # moto on a core of its own
        for name, value in overrides.items():
            setattr(options, name, value)
        return options


@contextmanager
def serving(latencies: Latencies, faults: Faults | None = None) -> Iterator[Servers]:
    """Pages and models on loopback with these latencies, stopped on exit."""
    # The pages say how long they stay fresh, as a static site's server commonly does; each
    # run's pages have URLs of their own (`sources`), so only a repeat finds them cached.
    pages = PageServer(SAMPLES, cache_control="max-age=300").start()
    models = FakeModelServer(
        latency_s={MAP_MODEL: latencies.summarize_s, REDUCE_MODEL: latencies.combine_s},
        faults=faults,
    ).start()
    try:
        yield Servers(pages, models, latencies)
    finally:
        models.stop()
        pages.stop()
