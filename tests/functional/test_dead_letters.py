"""The dead-letter stage: every dead message is kept, with why it died, and its job (when it
names one that exists) is marked failed with that reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from brief import keys
from brief.deadletter import UNSAID
from brief.errors import InvalidMessage, StorageUnavailable
from brief.extractive import ExtractiveSummarizer
from brief.ids import batch_job_id
from brief.messages import CombineTask, ResearchTask, SubmitTask, SummarizeTask
from brief.models import MAX_DEAD_BODY_CHARS, DeadMessage, ResearchRequest
from brief.ports import ModelText
from tests.work_messages import valid

from .test_model_failures import one_source_job
from .world import World

QUESTION = "How do honeybees choose a new home?"
DLQ = {
    "intake": "arn:aws:sqs:us-east-1:123456789012:brief-IntakeDeadLetterQueue-Ab12",
    "summarize": "arn:aws:sqs:us-east-1:123456789012:brief-SummarizeDeadLetterQueue-Cd34",
    "combine": "arn:aws:sqs:us-east-1:123456789012:brief-CombineDeadLetterQueue-Ef56",
}


# (name, body from (queue, job id), whether the job is marked, what the reason says)
POISON: list[tuple[str, Callable[[str, str], str], bool, str]] = [
    ("empty", lambda q, j: "", False, "an empty body"),
    ("not json", lambda q, j: "{not json", False, "not JSON"),
    ("a list", lambda q, j: json.dumps([valid(q, j)]), False, "not a Brief message"),
    ("no job", lambda q, j: json.dumps({"v": 1, "kind": "combine"}), False, "names no job"),
    (
        "wrong shape",
        lambda q, j: json.dumps({**valid(q, j), "priority": "high"}),
        True,
        "priority: Extra inputs are not permitted",
    ),
    (
        "wrong version",
        lambda q, j: json.dumps({**valid(q, j), "v": 2}),
        True,
        "v: Input should be 1",
    ),
    (
        "oversized",
        lambda q, j: json.dumps({**valid(q, j), "padding": "x" * 200_000}),
        True,
        "padding: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize("queue", sorted(DLQ))
@pytest.mark.parametrize(
    ("name", "body", "marks_job", "says"), POISON, ids=[row[0] for row in POISON]
)
async def test_a_poison_message_is_kept_and_fails_its_job_with_the_reason(
    world: World,
    queue: str,
    name: str,
    body: Callable[[str, str], str],
    marks_job: bool,
    says: str,
) -> None:
    job_id = await world.submit(QUESTION, ["http://pages.test/a"])
    text = body(queue, job_id)

    marked = await world.dead_letter().run(
        text,
        DLQ[queue],
        message_id="m-1",
        receive_count=5,
        sent_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )

    kept = await world.store.dead_messages()
    assert [key for key, _ in kept] == [f"dead/{queue}/m-1.json"]
    dead = kept[0][1]
    assert dead.queue == queue
    assert dead.receive_count == 5
    assert dead.sent_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert dead.body == text[:MAX_DEAD_BODY_CHARS]
    assert dead.truncated == (len(text) > MAX_DEAD_BODY_CHARS)
    assert says in dead.reason
    view = await world.store.view(job_id)
    if marks_job:
        assert marked == job_id == dead.job_id
        assert view.state == "failed"
        assert view.reason == dead.reason
        assert view.reason.startswith(f"a message on the {queue} queue was given up")
    else:
        assert marked is None
        assert view.state == "queued"


async def test_a_message_for_an_unknown_job_is_kept_and_says_so(world: World) -> None:
    body = SummarizeTask(job_id="a" * 32, index=0, expected=1).model_dump_json()
    assert await world.dead_letter().run(body, DLQ["summarize"], message_id="m-2") is None
    ((_, dead),) = await world.store.dead_messages("summarize")
    assert dead.job_id is None
    assert dead.reason == f"the summarize queue got a message for job {'a' * 32}, which is unknown"


async def test_a_valid_message_that_kept_failing_names_its_step(world: World) -> None:
    job_id = await world.submit(QUESTION, ["http://pages.test/a"])
    body = SummarizeTask(job_id=job_id, index=2, expected=3).model_dump_json()
    await world.dead_letter().run(body, DLQ["summarize"], message_id="m-3")
    view = await world.store.view(job_id)
    # No delivery kept an error (as when each timed out): the reason says where to look.
    reason = f"the summarize step for source 3 failed repeatedly and was given up; {UNSAID}"
    assert view.reason == reason
    ((_, dead),) = await world.store.dead_messages()
    assert (dead.job_id, dead.reason) == (job_id, reason)


async def test_a_redelivered_dead_letter_is_kept_once(world: World) -> None:
    job_id = await world.submit(QUESTION, ["http://pages.test/a"])
    body = CombineTask(job_id=job_id).model_dump_json()
    stage = world.dead_letter()
    await stage.run(body, DLQ["combine"], message_id="m-4")
    world.clock.advance(60)
    await stage.run(body, DLQ["combine"], message_id="m-4")
    kept = await world.store.dead_messages()
    assert len(kept) == 1
    events = [e.kind for _, e in await world.store.events(job_id)]
    assert events.count("job_failed") == 1


async def test_the_queue_comes_from_the_message_when_the_dlq_name_does_not_say(
    world: World,
) -> None:
    job_id = await world.submit(QUESTION, ["http://pages.test/a"])
    body = ResearchTask(job_id=job_id).model_dump_json()
    await world.dead_letter().run(body, "arn:aws:sqs:us-east-1:1:some-queue", message_id="m/5")
    ((key, dead),) = await world.store.dead_messages()
    assert key == "dead/intake/m_5.json"  # the message id is made safe for a key
    assert DeadMessage.model_validate_json(dead.model_dump_json()) == dead


async def test_a_message_on_the_wrong_queue_fails_its_job_saying_what_was_expected(
    world: World,
) -> None:
    job_id = await world.submit(QUESTION, ["http://pages.test/a"])
    body = CombineTask(job_id=job_id).model_dump_json()

    assert await world.dead_letter().run(body, DLQ["summarize"], message_id="m-6") == job_id

    view = await world.store.view(job_id)
    assert view.state == "failed"
    assert view.reason == (
        "a message on the summarize queue was given up: expected a SummarizeTask, got CombineTask"
    )


async def test_a_batch_job_whose_creation_kept_failing_is_failed_though_it_never_existed(
    world: World,
) -> None:
    request = ResearchRequest(question=QUESTION, sources=["http://pages.test/a"])
    batch = await world.intake().submit_batch([request, request], owner="alice")
    body = SubmitTask(batch_id=batch.batch_id, n=1).model_dump_json()

    marked = await world.dead_letter().run(body, DLQ["intake"], message_id="m-7")

    assert marked == batch_job_id(batch.batch_id, 1)
    ((key, dead),) = await world.store.dead_messages()
    assert (key, dead.job_id) == ("dead/intake/m-7.json", marked)
    assert dead.reason == "the submit step failed repeatedly and was given up"
    view = await world.store.batch_view(batch.batch_id, owner="alice")
    assert [job.state for job in view.jobs] == ["pending", "failed"]


async def test_a_poison_batch_message_still_fails_the_job_it_names(world: World) -> None:
    request = ResearchRequest(question=QUESTION, sources=["http://pages.test/a"])
    batch = await world.intake().submit_batch([request], owner="alice")
    body = json.dumps({"v": 1, "kind": "submit", "batch_id": batch.batch_id, "n": 0, "x": 1})

    marked = await world.dead_letter().run(body, "arn:aws:sqs:us-east-1:1:some-queue")

    assert marked == batch_job_id(batch.batch_id, 0)
    ((key, dead),) = await world.store.dead_messages()
    assert key.startswith("dead/intake/")  # the queue of a `submit`, from the body's kind
    assert dead.reason == (
        "a message on the intake queue was given up: "
        "not a valid Brief message: submit.x: Extra inputs are not permitted"
    )
    view = await world.store.batch_view(batch.batch_id, owner="alice")
    assert view.counts == {"failed": 1}


async def test_a_step_storage_kept_failing_names_what_failed(world: World) -> None:
    job_id, (task,) = await one_source_job(world)
    summary = keys.summary(job_id, 0)

    with world.writes_refused(lambda key: key == summary):
        for _ in range(3):  # every delivery, a minute apart
            with pytest.raises(StorageUnavailable):
                await world.summarize().run(task)
            world.clock.advance(60)
    await world.dead_letter().run(task.model_dump_json(), DLQ["summarize"], message_id="m-9")

    view = await world.store.view(job_id)
    assert view.reason == (
        f"S3 put {summary} failed: SlowDown 3 times in 2 minutes; "
        "the summarize step for source 1 was given up"
    )


async def test_a_combine_storage_kept_failing_names_what_failed_once_per_delivery(
    world: World,
) -> None:
    job_id, (task,) = await one_source_job(world)
    await world.summarize().run(task)
    (combine,) = world.queue.take("combine")
    assert isinstance(combine, CombineTask)

    with world.writes_refused(lambda key: key == keys.report(job_id)):
        for _ in range(2):
            with pytest.raises(StorageUnavailable):
                await world.combine().run(combine)
    await world.dead_letter().run(combine.model_dump_json(), DLQ["combine"], message_id="m-10")

    view = await world.store.view(job_id)
    assert view.reason == (
        f"S3 put {keys.report(job_id)} failed: SlowDown 2 times; the combine step was given up"
    )


class Crashing(ExtractiveSummarizer):
    """A summarizer with a bug."""

    async def summarize(self, *args: Any, **kwargs: Any) -> ModelText:
        raise RuntimeError("boom")


async def test_a_step_given_up_on_names_the_error_each_delivery_ended_with(world: World) -> None:
    job_id, (task,) = await one_source_job(world)
    stray = SummarizeTask(job_id=job_id, index=2, expected=1)  # no source 3 was retrieved
    crashing = replace(world.summarize(), summarizer=Crashing())

    for _ in range(3):
        with pytest.raises(InvalidMessage):
            await world.summarize().run(stray)
        with pytest.raises(RuntimeError):
            await crashing.run(task)
        world.clock.advance(1)
    await world.dead_letter().run(stray.model_dump_json(), DLQ["summarize"], message_id="m-11")
    await world.dead_letter().run(task.model_dump_json(), DLQ["summarize"], message_id="m-12")

    dead = {key: d.reason for key, d in await world.store.dead_messages()}
    assert dead == {
        "dead/summarize/m-11.json": f"job {job_id} has no usable source 3 3 times in 2 seconds; "
        "the summarize step for source 3 was given up",
        "dead/summarize/m-12.json": "RuntimeError: boom 3 times in 2 seconds; "
        "the summarize step for source 1 was given up",
    }
