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


async def test_the_deep_demo_grows_a_second_level_and_prints_its_tree_and_report() -> None:
    out = io.StringIO()
    assert await run_demo(out, deep=True) == 0
    text = out.getvalue()
    progress, rest = text.split("Questions followed (level", 1)
    assert "level_started — level 2: 2 follow-up questions" in progress
    assert "retrieval_started — level 2" in progress
    assert "report_ready" in progress
    tree, report = rest.split("─" * 78, 1)
    # The root answered by the two pages the job started from, then each follow-up of level
    # 2, indented under it, answered by a page only its web search found.
    assert re.search(r"^  1 How do honeybees .+ \[1\]\[2\]$", tree, re.M), tree
    follow_ups = re.findall(r"^    (2\.\d) What is known about .+? ((?:\[\d+\])+)$", tree, re.M)
    assert [node for node, _ in follow_ups] == ["2.1", "2.2"], tree
    found = {int(n) for _, sources in follow_ups for n in re.findall(r"\d+", sources)}
    assert min(found) >= 3, tree  # indexed after the two pages of level 1
    assert "## Questions followed" in report
    assert "  - 2.1 What is known about" in report
    assert "## Sources" in report
    for n in sorted(found):
        assert f"- [{n}] [" in report, (n, report)  # cited, with its title
    assert re.search(r"total\s+\d+ ms", report)
    assert re.search(r"\] search\s+ok ", report.split("Stage timings:", 1)[1])
