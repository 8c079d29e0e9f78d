"""`brief research` prints the report's draft as the model writes it, between the progress
lines, and starts it over when the model does."""

from __future__ import annotations

import io
from typing import Any

from brief_cli.cli import follow
from brief_client.events import StreamedEvent


class Events:
    """A client whose job has these events."""

    def __init__(self, *events: tuple[str, dict[str, Any]]) -> None:
        self._events = [StreamedEvent(cursor=None, kind=k, data=d) for k, d in events]

    def events(self, job_id: str) -> list[StreamedEvent]:
        return self._events


def followed(*events: tuple[str, dict[str, Any]]) -> tuple[str, str]:
    out = io.StringIO()
    last = follow(Events(*events), "0" * 32, out, started=0.0)  # type: ignore[arg-type]
    return last, out.getvalue()


def test_the_draft_grows_on_one_line_between_the_progress_lines() -> None:
    last, printed = followed(
        ("combine_started", {}),
        ("report_text", {"text": "Scouts dance", "offset": 0}),
        ("report_text", {"text": " for the best site [1].", "offset": 12}),
        ("report_ready", {}),
    )

    assert last == "report_ready"
    lines = printed.splitlines()
    assert "combine_started" in lines[0]
    assert lines[1] == "  draft (the model is writing; the report follows):"
    assert lines[2] == "  Scouts dance for the best site [1]."
    assert "report_ready" in lines[3]


def test_a_draft_that_starts_over_says_so() -> None:
    _, printed = followed(
        ("report_text", {"text": "Bees are", "offset": 0}),
        ("report_text", {"text": "Scouts dance.", "offset": 0}),
        ("report_ready", {}),
    )

    assert "  Bees are\n  (the model started over)\n  Scouts dance.\n" in printed
