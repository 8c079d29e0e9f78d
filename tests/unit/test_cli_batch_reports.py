"""`brief batch` writes each report as its job ends, and reads the batch's job list from the
first job it has not collected yet, not from the start each time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from brief_cli.cli import BatchReports


class Batch:
    """A batch of `size` jobs whose states the test sets; it records the pages asked for."""

    def __init__(self, size: int) -> None:
        self.states = ["running"] * size
        self.asked_after: list[int | None] = []

    def view(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for state in self.states:
            counts[state] = counts.get(state, 0) + 1
        return {"counts": counts}

    def batch_jobs(
        self, batch_id: str, states: Sequence[str] = (), *, after: int | None = None
    ) -> Iterator[dict[str, Any]]:
        self.asked_after.append(after)
        for n, state in enumerate(self.states):
            if (after is None or n > after) and state in states:
                yield {"n": n, "job_id": f"{n:032x}", "state": state}

    def report_markdown(self, job_id: str) -> str:
        return f"# report of {job_id}\n"


def test_reports_are_written_as_jobs_end_and_pages_start_past_the_collected(
    tmp_path: Path,
) -> None:
    batch = Batch(5)
    reports = BatchReports(batch, "b" * 32, tmp_path, size=5)  # type: ignore[arg-type]

    batch.states[0] = batch.states[1] = "done"
    batch.states[3] = "failed"
    reports.collect(batch.view())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"1-{0:032x}.md", f"2-{1:032x}.md"]
    assert [j["n"] for j in reports.failed] == [3]

    reports.collect(batch.view())  # nothing new ended: no page read
    batch.states[2] = batch.states[4] = "done"
    reports.collect(batch.view())

    assert batch.asked_after == [
        None,
        1,
    ]  # jobs 1 and 2 were collected: the second page starts after them
    assert reports.written == 4
    assert (tmp_path / f"5-{4:032x}.md").read_text() == f"# report of {4:032x}\n"
