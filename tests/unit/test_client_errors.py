"""The Python client's errors: each API status is its own type, carrying the problem."""

from __future__ import annotations

import httpx
import pytest

from brief_client import (
    ApiError,
    Brief,
    BriefError,
    Invalid,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    Unreachable,
)


def answering(status: int, body: object = None, headers: dict[str, str] | None = None) -> Brief:
    def api(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, text="upstream trouble", headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return Brief("http://brief.test", transport=httpx.MockTransport(api))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, Unauthorized), (404, NotFound), (413, TooLarge), (422, Invalid), (503, ServerError)],
)
def test_each_status_is_its_own_error_with_the_problem_detail(
    status: int, kind: type[ApiError]
) -> None:
    problem = {"title": "Nope", "detail": f"what went wrong ({status})", "status": status}
    with answering(status, problem) as brief, pytest.raises(kind) as caught:
        brief.status("0" * 32)

    assert caught.value.status == status
    assert caught.value.detail == f"what went wrong ({status})"
    assert caught.value.body == problem
    assert str(caught.value) == f"what went wrong ({status}) (HTTP {status})"


def test_an_invalid_request_lists_each_field() -> None:
    errors = [{"field": "sources", "message": "at least one source"}]
    problem = {"title": "Invalid request", "detail": "sources: at least one", "errors": errors}
    with answering(422, problem) as brief, pytest.raises(Invalid) as caught:
        brief.submit("Why?", [])

    assert caught.value.errors == errors


def test_a_throttled_call_says_how_long_to_wait() -> None:
    brief = answering(429, {"title": "Slow down"}, {"Retry-After": "7"})
    with brief, pytest.raises(RateLimited) as caught:
        brief.status("0" * 32)

    assert caught.value.retry_after_s == 7.0


def test_an_answer_that_is_not_a_problem_document_still_says_what_came_back() -> None:
    with answering(502) as brief, pytest.raises(ServerError, match="upstream trouble"):
        brief.status("0" * 32)


def test_nothing_listening_is_unreachable_and_every_error_is_a_brief_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    brief = Brief("http://brief.test", transport=httpx.MockTransport(refuse))
    with brief, pytest.raises(Unreachable, match=r"nothing is listening at http://brief\.test"):
        brief.status("0" * 32)
    assert issubclass(ApiError, BriefError)
    assert issubclass(Unreachable, BriefError)
