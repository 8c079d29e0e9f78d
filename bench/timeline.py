"""One job's stages per source, drawn from its events, so the overlap is visible."""

from __future__ import annotations

from pathlib import Path

from bench.jobs import Job, _seconds


def draw(job: Job, path: Path, title: str) -> None:
    """A Gantt chart of `job`: each source's fetch and summary, then the combine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def since(event: dict[str, object]) -> float:
        return _seconds(str(event["at"])) - job.submitted_at

    first = {e["kind"]: since(e) for e in reversed(job.events)}  # earliest of each kind
    indexed = {(e["kind"], e.get("index")): since(e) for e in job.events}
    indexes = sorted({e["index"] for e in job.events if e.get("index") is not None})
    retrieval_start = first.get("retrieval_started", 0.0)
    retrieval_done = first.get("retrieval_done", retrieval_start)
    combine_start = first.get("combine_started")
    report = first.get("report_ready")

    fig, ax = plt.subplots(figsize=(10, 2.0 + 0.5 * (len(indexes) + 2)))
    rows: list[str] = []
    y = 0
    queued = first.get("retrieval_started", 0.0)
    ax.barh(y, queued, left=0, color="#cccccc", edgecolor="black")
    rows.append("submit")
    for i in indexes:
        y += 1
        rows.append(f"source {i + 1}")
        fetched = indexed.get(("source_fetched", i))
        summarized = indexed.get(("summary_done", i))
        if fetched is not None:
            ax.barh(y, fetched - retrieval_start, left=retrieval_start, color="#4c72b0")
        if summarized is not None:
            # Summaries are queued when retrieval ends; each bar runs from then to its summary.
            ax.barh(y, summarized - retrieval_done, left=retrieval_done, color="#dd8452")
    y += 1
    rows.append("combine")
    if combine_start is not None and report is not None:
        ax.barh(y, report - combine_start, left=combine_start, color="#55a868")
    last_summary = max((v for (k, _), v in indexed.items() if k == "summary_done"), default=None)
    if last_summary is not None and combine_start is not None:
        ax.barh(y, combine_start - last_summary, left=last_summary, color="#eeeeee", hatch="//")
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since POST /jobs")
    ax.set_title(title, fontsize=10)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color="#cccccc", label="submit → research (API, intake queue)"),
            Patch(color="#4c72b0", label="fetch (retrieval start → source_fetched)"),
            Patch(color="#dd8452", label="summarize (retrieval_done → summary_done)"),
            Patch(facecolor="#eeeeee", hatch="//", label="fan-in → combine queue hop"),
            Patch(color="#55a868", label="combine (combine_started → report_ready)"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=3,
        fontsize=7,
        frameon=False,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
