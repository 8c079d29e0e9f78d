"""Queue messages: a bad body fails with a reason an operator can read, and bodies stay small."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError

from brief.errors import InvalidMessage, PermanentError
from brief.messages import (
    INLINE_BYTES,
    MAX_QUESTION_CHARS,
    CombineTask,
    ResearchTask,
    SummarizeTask,
    inline_size,
    parse_task,
)
from brief.models import SourceOutcome, SourceRecord

JOB = "0123456789abcdef0123456789abcdef"
SQS_MAX_BYTES = 256 * 1024

Expected = type[ResearchTask] | type[SummarizeTask] | type[CombineTask]


def body(**fields: object) -> str:
    return json.dumps(fields)


# Valid bodies


def test_research_body_parses_into_a_research_task() -> None:
    task = parse_task(body(v=1, kind="research", job_id=JOB), ResearchTask)
    assert task == ResearchTask(job_id=JOB)


def test_summarize_body_parses_with_its_index_and_expected_count() -> None:
    task = parse_task(body(kind="summarize", job_id=JOB, index=3, expected=5), SummarizeTask)
    assert (task.job_id, task.index, task.expected) == (JOB, 3, 5)


def test_combine_body_parses_into_a_combine_task() -> None:
    task = parse_task(body(kind="combine", job_id=JOB), CombineTask)
    assert task == CombineTask(job_id=JOB)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (ResearchTask(job_id=JOB), ResearchTask),
        (SummarizeTask(job_id=JOB, index=0, expected=1), SummarizeTask),
        (CombineTask(job_id=JOB), CombineTask),
    ],
    ids=["research", "summarize", "combine"],
)
def test_a_sent_message_is_received_unchanged(message: BaseModel, expected: Expected) -> None:
    assert parse_task(message.model_dump_json(), expected) == message


# Bodies that fail their own record, each with a reason


@pytest.mark.parametrize(
    ("raw", "expected", "reason"),
    [
        pytest.param(
            body(kind="combine", job_id=JOB),
            ResearchTask,
            "expected a ResearchTask, got CombineTask",
            id="combine-on-the-intake-queue",
        ),
        pytest.param(
            body(kind="research", job_id=JOB),
            SummarizeTask,
            "expected a SummarizeTask, got ResearchTask",
            id="research-on-the-summarize-queue",
        ),
        pytest.param(
            body(v=2, kind="research", job_id=JOB),
            ResearchTask,
            "not a valid Brief message: research.v: Input should be 1",
            id="newer-version",
        ),
        pytest.param(
            body(kind="research", job_id=JOB, text="the whole page"),
            ResearchTask,
            "not a valid Brief message: research.text: Extra inputs are not permitted",
            id="extra-field",
        ),
        pytest.param(
            body(kind="research", job_id="../x"),
            ResearchTask,
            "not a valid Brief message: research.job_id: String should match pattern",
            id="path-traversal-job-id",
        ),
        pytest.param(
            body(kind="research", job_id=JOB.upper()),
            ResearchTask,
            "not a valid Brief message: research.job_id: String should match pattern",
            id="uppercase-job-id",
        ),
        pytest.param(
            body(kind="research", job_id=JOB[:-1]),
            ResearchTask,
            "not a valid Brief message: research.job_id: String should match pattern",
            id="short-job-id",
        ),
        pytest.param(
            body(kind="research", job_id=JOB + "\n"),
            ResearchTask,
            "not a valid Brief message: research.job_id: String should match pattern",
            id="job-id-with-trailing-newline",
        ),
        pytest.param(
            body(kind="summarize", job_id=JOB, index=-1, expected=1),
            SummarizeTask,
            "not a valid Brief message: summarize.index: "
            "Input should be greater than or equal to 0",
            id="negative-index",
        ),
        pytest.param(
            body(kind="summarize", job_id=JOB, index=0, expected=0),
            SummarizeTask,
            "not a valid Brief message: summarize.expected: "
            "Input should be greater than or equal to 1",
            id="nothing-expected",
        ),
        pytest.param(
            body(kind="summarize", job_id=JOB),
            SummarizeTask,
            "not a valid Brief message: summarize.index: Field required",
            id="missing-field",
        ),
        pytest.param(
            body(kind="translate", job_id=JOB),
            ResearchTask,
            "not a valid Brief message: body: Input tag 'translate' found using 'kind' "
            "does not match any of the expected tags",
            id="unknown-kind",
        ),
        pytest.param(
            body(job_id=JOB),
            ResearchTask,
            "not a valid Brief message: body: Unable to extract tag using discriminator 'kind'",
            id="no-kind",
        ),
        pytest.param(
            "hello",
            ResearchTask,
            "not a valid Brief message: body: Invalid JSON",
            id="not-json",
        ),
        pytest.param(
            "",
            ResearchTask,
            "not a valid Brief message: body: Invalid JSON: EOF while parsing",
            id="empty-body",
        ),
        pytest.param(
            "[]",
            ResearchTask,
            "not a valid Brief message: body: Input should be an object",
            id="json-but-not-an-object",
        ),
    ],
)
def test_bad_body_raises_invalid_message_with_a_readable_reason(
    raw: str, expected: Expected, reason: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_task(raw, expected)

    assert str(caught.value).startswith(reason)


def test_an_invalid_message_is_permanent_so_it_is_not_retried() -> None:
    with pytest.raises(PermanentError):
        parse_task("{}", ResearchTask)


# Size and content


@pytest.mark.parametrize(
    "message",
    [
        ResearchTask(job_id=JOB),
        SummarizeTask(job_id=JOB, index=19, expected=20, input_digest="f" * 64),
        CombineTask(job_id=JOB, indexes=tuple(range(20))),
    ],
    ids=lambda m: type(m).__name__,
)
def test_a_message_is_a_few_keys_far_below_the_sqs_size_limit(message: BaseModel) -> None:
    encoded = message.model_dump_json(exclude_none=True).encode()  # as the queue sends it

    assert len(encoded) < 300 < SQS_MAX_BYTES
    keys = {"v", "kind", "job_id", "index", "expected", "input_digest", "indexes", "question"}
    keys |= {"level", "first"}  # a deep job's level, and where its sources start
    assert set(json.loads(encoded)) <= keys


def test_ten_summarize_messages_with_the_longest_question_fit_one_sqs_batch() -> None:
    # The question rides along so the stage need not read the request; a batch send's ten
    # messages share SQS's 256 KiB, even when every character takes four bytes in UTF-8.
    widest = "\U0001f41d" * MAX_QUESTION_CHARS
    message = SummarizeTask(
        job_id=JOB, index=19, expected=20, input_digest="f" * 64, question=widest
    )
    assert 10 * len(message.model_dump_json().encode()) < SQS_MAX_BYTES
    with pytest.raises(ValidationError):
        SummarizeTask(job_id=JOB, index=0, expected=1, question=widest + "?")


def test_what_rides_along_keeps_a_message_within_one_64_kib_billing_unit() -> None:
    # A source's record rides along only up to INLINE_BYTES; with the widest question a
    # message still costs one SQS request (SQS bills by 64 KiB).
    widest = "\U0001f41d" * MAX_QUESTION_CHARS
    outcome = SourceOutcome(index=19, url="https://example.com/", state="ok")
    at = datetime(2026, 12, 3, tzinfo=UTC)
    empty = SourceRecord(job_id=JOB, outcome=outcome, text="", fetched_at=at)
    record = empty.model_copy(update={"text": "x" * (INLINE_BYTES - inline_size(empty))})
    assert inline_size(record) == INLINE_BYTES
    message = SummarizeTask(
        job_id=JOB, index=19, expected=20, question=widest, source=record, input_digest="f" * 64
    )
    assert len(message.model_dump_json(exclude_none=True).encode()) <= 64 * 1024
    assert parse_task(message.model_dump_json(exclude_none=True), SummarizeTask) == message


def test_a_digest_is_a_sha256_and_indexes_are_source_positions() -> None:
    with pytest.raises(ValidationError):
        SummarizeTask(job_id=JOB, index=0, expected=1, input_digest="the whole text")
    with pytest.raises(ValidationError):
        CombineTask(job_id=JOB, indexes=(-1,))


def test_a_message_cannot_be_made_to_carry_content() -> None:
    with pytest.raises(ValidationError):
        SummarizeTask.model_validate(
            {"job_id": JOB, "index": 0, "expected": 1, "text": "x" * SQS_MAX_BYTES}
        )
