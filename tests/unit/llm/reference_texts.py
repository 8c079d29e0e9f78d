"""Texts whose real token counts the estimate is checked against (see test_tokens.py)."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLES = Path(__file__).parents[3] / "infra/brief_testing/samples"

PROSE = """\
Honeybee swarms choose a new home by a process that looks remarkably like a debate. Several
hundred scouts fly out from the cluster, inspect cavities in trees and walls, and return to
report what they found. A scout that likes a site performs a waggle dance whose length
reflects her enthusiasm, and other scouts that follow the dance fly out to inspect the site
for themselves.

Support for a good site grows faster than support for a poor one, because each recruit that
approves of the site dances for it in turn. When about fifteen scouts are present at one site
at the same time, they begin to produce piping signals that warm up the swarm for flight.
Within an hour the swarm lifts off and flies, sometimes several kilometres, to the chosen
cavity. Thomas Seeley and his colleagues showed in the 2000s that this quorum rule lets the
swarm trade speed against accuracy: a higher quorum means slower but better decisions.
"""

CODE = '''\
async def call_with_retries(fn, *, attempts, base_s=0.5, cap_s=20.0):
    """Call `fn`, retrying transient failures with full-jitter backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except RetryableError as exc:
            if attempt == attempts:
                raise
            delay = random.random() * min(cap_s, base_s * 2 ** (attempt - 1))
            await asyncio.sleep(max(delay, exc.retry_after or 0.0))
'''

TEXTS = {
    "prose": PROSE,
    "sample_txt": (SAMPLES / "05-stop-signals-and-deadlocks.txt").read_text(),
    "code": CODE,
    "numbers": "\n".join(f"{i}\t{i * 3.14159:.4f}\t{i**3}" for i in range(120)),
    "json": json.dumps([{"id": i, "score": i / 7, "title": f"Item {i}"} for i in range(40)]),
    "urls": " ".join(f"https://www.example.com/a/page-{i}.html?id={i * 7919}" for i in range(40)),
}
