"""A valid message of each work queue, for tests that send poison beside (or instead of) it."""

from __future__ import annotations

from brief.messages import CombineTask, ResearchTask, SummarizeTask


def valid(queue: str, job_id: str) -> dict[str, object]:
    """The message `queue` ("intake", "summarize" or "combine") would carry for `job_id`."""
    task = {
        "intake": ResearchTask(job_id=job_id),
        "summarize": SummarizeTask(job_id=job_id, index=0, expected=1),
        "combine": CombineTask(job_id=job_id),
    }[queue]
    return task.model_dump(mode="json")
