"""`make demo`, as a newcomer runs it: the default job, and the one with every kind of source."""

from __future__ import annotations

import io
import re

from brief_testing.demo import run_demo


async def test_the_demo_prints_a_cited_report_and_stage_timings() -> None:
    out = io.StringIO()
    assert await run_demo(out) == 0
    text = out.getvalue()
    assert "report_ready" in text
    assert "## Sources" in text
    for n in range(1, 6):
        assert f"[{n}]" in text
    assert re.search(r"total\s+\d+ ms", text)


async def test_the_demo_with_every_kind_of_source_uses_them_all() -> None:
    out = io.StringIO()
    assert await run_demo(out, every_kind=True) == 0
    outcomes = out.getvalue().split("Stage timings:", 1)[1]
    for kind in ("url", "search", "vector", "document"):
        assert re.search(rf"\] {kind}\s+ok ", outcomes), (kind, outcomes)
    assert "bait-hives.pdf" in outcomes
