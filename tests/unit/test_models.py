"""Models: what a caller may ask for, and that stored records read back exactly as written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from brief.models import (
    MAX_QUESTION_CHARS,
    MAX_SOURCES,
    Citation,
    Event,
    JobRecord,
    Report,
    ResearchRequest,
    Retrieval,
    SourceOutcome,
    SourceRecord,
    SummaryRecord,
    Usage,
)

JOB = "0123456789abcdef0123456789abcdef"
AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
URL = "https://example.org/article"


def request(question: str = "Why do glaciers move?", sources: Any = None) -> ResearchRequest:
    return ResearchRequest.model_validate(
        {"question": question, "sources": [URL] if sources is None else sources}
    )


def rejection(data: dict[str, Any]) -> dict[str, Any]:
    """The first error a caller would be shown for `data`."""
    with pytest.raises(ValidationError) as caught:
        ResearchRequest.model_validate(data)
    first: dict[str, Any] = dict(caught.value.errors()[0])
    return first


# ResearchRequest: the question


def test_question_whitespace_is_collapsed_to_single_spaces() -> None:
    assert request("  Why\tdo \n glaciers   move?  ").question == "Why do glaciers move?"


@pytest.mark.parametrize("question", ["", "ab", "     ", " a \n\t "])
def test_question_without_a_few_characters_of_words_is_rejected(question: str) -> None:
    error = rejection({"question": question, "sources": [URL]})
    assert error["loc"] == ("question",)


def test_question_that_is_only_whitespace_gets_a_reason_a_user_understands() -> None:
    error = rejection({"question": "  a   \n ", "sources": [URL]})
    assert "the question needs at least a few words" in error["msg"]


def test_question_at_the_length_limit_is_accepted_and_one_more_is_rejected() -> None:
    assert len(request("q" * MAX_QUESTION_CHARS).question) == MAX_QUESTION_CHARS

    error = rejection({"question": "q" * (MAX_QUESTION_CHARS + 1), "sources": [URL]})
    assert error["loc"] == ("question",)
    assert error["type"] == "string_too_long"


# ResearchRequest: the sources


@pytest.mark.parametrize(
    "source",
    [
        "ftp://example.org/file.txt",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:someone@example.org",
        "example.org/no-scheme",
        "not a url",
        "",
    ],
)
def test_a_source_that_is_not_an_http_url_is_rejected_at_its_position(source: str) -> None:
    error = rejection({"question": "Why do glaciers move?", "sources": [URL, source]})
    assert error["loc"][:2] == ("sources", 1)


def test_http_and_https_sources_are_accepted() -> None:
    sources = ["http://example.org/a", "https://example.org/b"]
    assert [str(u) for u in request(sources=sources).sources] == sources


def test_at_least_one_source_is_required() -> None:
    error = rejection({"question": "Why do glaciers move?", "sources": []})
    assert error["loc"] == ("sources",)
    assert error["type"] == "too_short"


def test_twenty_sources_are_accepted_and_twenty_one_rejected() -> None:
    urls = [f"https://example.org/{i}" for i in range(MAX_SOURCES + 1)]
    assert len(request(sources=urls[:MAX_SOURCES]).sources) == MAX_SOURCES

    error = rejection({"question": "Why do glaciers move?", "sources": urls})
    assert error["loc"] == ("sources",)
    assert error["type"] == "too_long"


def test_duplicate_sources_are_dropped_keeping_the_first_occurrence_order() -> None:
    sources = [
        "https://b.example/",
        "https://a.example/x",
        "https://b.example/",
        "https://c.example/",
        "https://a.example/x",
    ]
    assert [str(u) for u in request(sources=sources).sources] == [
        "https://b.example/",
        "https://a.example/x",
        "https://c.example/",
    ]


def test_sources_that_differ_only_in_spelling_of_the_same_url_count_as_duplicates() -> None:
    sources = ["https://example.org", "HTTPS://EXAMPLE.ORG/", "https://example.org/"]
    assert [str(u) for u in request(sources=sources).sources] == ["https://example.org/"]


def test_unknown_request_fields_are_rejected_by_name() -> None:
    error = rejection({"question": "Why do glaciers move?", "sources": [URL], "model": "gpt"})
    assert error["loc"] == ("model",)
    assert error["type"] == "extra_forbidden"


# Stored records


def outcome(index: int, state: str = "ok", **extra: Any) -> SourceOutcome:
    reason = None if state == "ok" else "the server answered 404 Not Found"
    return SourceOutcome.model_validate(
        {"index": index, "url": f"https://example.org/{index}", "state": state, "reason": reason}
        | extra
    )


RECORDS: list[BaseModel] = [
    JobRecord(
        job_id=JOB,
        owner="user-123",
        created_at=AT,
        request=request("Why  do glaciers move?", [URL, "http://example.com/b"]),
    ),
    SourceRecord(
        job_id=JOB,
        outcome=outcome(
            0,
            final_url="https://example.org/0?x=1",
            title="Glaciers — an overview",
            content_type="text/html; charset=utf-8",
            bytes=12_345,
            chars=6_789,
            fetch_ms=321,
        ),
        text="Ice deforms under its own weight.\n\nÜnïcödé survives.",
        fetched_at=AT,
    ),
    SummaryRecord(
        job_id=JOB,
        index=2,
        state="failed",
        reason="the model could not summarize this source: empty",
        model="extractive-v1",
        usage=Usage(input_tokens=1_200, output_tokens=150, calls=1, cost_usd=0.00042),
        started_at=AT,
        finished_at=AT + timedelta(seconds=2),
    ),
    Report(
        job_id=JOB,
        question="Why do glaciers move?",
        markdown="# Why do glaciers move?\n\nIce flows [1].\n",
        citations=[Citation(n=1, index=0, url="https://example.org/0", title=None)],
        missing=[outcome(1, "failed")],
        model="extractive-v1",
        usage=Usage(input_tokens=9_000, output_tokens=700, calls=6, cost_usd=0.0123),
        created_at=AT,
    ),
    Event(job_id=JOB, kind="source_failed", at=AT, index=3, detail="timed out after 10 s"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_stored_record_reads_back_equal_to_what_was_written(record: BaseModel) -> None:
    stored = record.model_dump_json()
    read = type(record).model_validate_json(stored)

    assert read == record
    assert read.model_dump_json() == stored


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_stored_record_keeps_its_utc_timestamps(record: BaseModel) -> None:
    read = type(record).model_validate_json(record.model_dump_json())
    stamps = [v for v in read.model_dump().values() if isinstance(v, datetime)]

    assert stamps
    assert all(s.utcoffset() == timedelta(0) for s in stamps)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_stored_record_with_an_unknown_field_is_rejected(record: BaseModel) -> None:
    data = json.loads(record.model_dump_json()) | {"surprise": 1}

    with pytest.raises(ValidationError) as caught:
        type(record).model_validate_json(json.dumps(data))
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("surprise",), "extra_forbidden")
    ]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_stored_record_from_another_version_is_rejected(record: BaseModel) -> None:
    data = json.loads(record.model_dump_json()) | {"v": 2}

    with pytest.raises(ValidationError) as caught:
        type(record).model_validate_json(json.dumps(data))
    assert caught.value.errors()[0]["loc"] == ("v",)


def test_stored_record_with_a_job_id_unsafe_for_a_key_is_rejected() -> None:
    data = json.loads(RECORDS[-1].model_dump_json()) | {"job_id": "../other/job"}

    with pytest.raises(ValidationError) as caught:
        Event.model_validate_json(json.dumps(data))
    assert caught.value.errors()[0]["loc"] == ("job_id",)


# Retrieval


def test_usable_sources_are_those_that_produced_text_in_request_order() -> None:
    retrieval = Retrieval(
        job_id=JOB,
        sources=[
            outcome(0, "failed"),
            outcome(1),
            outcome(2, "failed"),
            outcome(3),
            outcome(4),
        ],
        started_at=AT,
        finished_at=AT,
    )

    assert [s.index for s in retrieval.usable] == [1, 3, 4]
    assert all(s.state == "ok" for s in retrieval.usable)


def test_retrieval_with_no_ok_source_has_nothing_usable() -> None:
    retrieval = Retrieval(
        job_id=JOB,
        sources=[outcome(0, "failed"), outcome(1, "failed")],
        started_at=AT,
        finished_at=AT,
    )

    assert retrieval.usable == []


def test_sources_that_are_the_same_page_are_kept_once_as_first_written() -> None:
    request = ResearchRequest.model_validate(
        {
            "question": "What is this?",
            "sources": [
                "https://Example.org:443/a?utm_source=news#top",
                "https://example.org/a",
                "https://example.org/b",
            ],
        }
    )
    # Kept as first written (pydantic has already lowercased the host and dropped port 443).
    assert request.sources == [
        "https://example.org/a?utm_source=news#top",
        "https://example.org/b",
    ]
