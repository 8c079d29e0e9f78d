"""A container's cold invocation ends by freezing what it built (Lambda, and the local
stack's containers), so warm invocations' full collections do not walk it again."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import pytest

from brief import logs, metrics
from brief.runtime import Container


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each call of gc.freeze, recorded instead of made (it would freeze the test process)."""
    calls: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    return calls


def _invoke(container: Container, times: int) -> None:
    for n in range(times):
        with container.invocation(SimpleNamespace(aws_request_id=f"r{n}", function_name="f")):
            pass


def test_in_lambda_the_cold_invocation_freezes_once(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "brief-summarize")
    monkeypatch.setattr(logs, "configure_lambda", lambda level: None)
    monkeypatch.setattr(metrics, "configure", lambda: None)

    _invoke(Container(), 3)

    assert freezes == [1]


def test_outside_lambda_nothing_is_frozen_unless_asked(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    _invoke(Container(), 2)
    assert freezes == []

    asked = Container()
    asked.freeze_after_cold_start = True  # the local stack's containers
    _invoke(asked, 2)
    assert freezes == [1]
