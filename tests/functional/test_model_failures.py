"""A model that keeps failing explains itself: each retry is an event (a few, however many
retries), the job's status shows what each source waits for, a job the queue gives up on
names the model and what it answered, and the log line of a failed record names its job and
source. The model is the fake model server, in process (its ASGI app behind httpx), and
every wait is virtual: the world's clock moves instead of the test sleeping."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from brief import logs
from brief.batch import process_batch
from brief.errors import RetryableError
from brief.llm.openai import OpenAIChat
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.summarizer import LLMSummarizer
from brief.messages import SummarizeTask, parse_task
from brief.models import Event
from brief.pipeline import Combine, Summarize
from brief_testing.fake_models import FakeModelServer, FaultKind, Faults

from .world import World, page

QUESTION = "How do honeybees choose a new home?"
DLQ = "arn:aws:sqs:us-east-1:123456789012:brief-SummarizeDeadLetterQueue-Cd34"
PARAGRAPHS = (
    "Scout bees search the countryside for cavities that could hold the swarm's new nest.",
    "A scout that finds a good site dances for it, and other scouts go to inspect it.",
    "The swarm moves once enough scouts gather at one site: a quorum decides the home.",
)


class VirtualTime:
    """The model layer's clock and sleep on the world's clock: a wait moves it, at once.

    `hold` makes the waits stop until `release`, so a test can look at a job mid-wait.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.waits: list[float] = []
        self.held = asyncio.Event()
        self.go = asyncio.Event()
        self.go.set()

    def monotonic(self) -> float:
        return self.world.clock.offset.total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.world.clock.advance(seconds)
        self.held.set()
        await self.go.wait()

    def hold(self) -> None:
        self.go.clear()

    def release(self) -> None:
        self.go.set()


@pytest.fixture
def models() -> FakeModelServer:
    """The fake model server, not listening: its ASGI app answers in process."""
    return FakeModelServer(faults=Faults(retry_after_s=None))


@pytest.fixture
async def http(models: FakeModelServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=models)  # type: ignore[arg-type]  # its scope is a dict
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def time(world: World) -> VirtualTime:
    return VirtualTime(world)


def model_stages(
    world: World,
    http: httpx.AsyncClient,
    time: VirtualTime,
    *,
    attempts: int = 4,
    throttle_budget_s: float = 60.0,
    retry_event_every_s: float = 5.0,
    jitter: float = 0.0,
) -> None:
    """Make the world's summarize and combine use a model behind the fake server."""
    chat = OpenAIChat(
        http, model="fake-small", context_tokens=8192, base_url="http://models.test/v1"
    )
    limiter = RateLimiter(4, clock=time.monotonic, sleep=time.sleep)
    summarizer = LLMSummarizer(
        chat,
        chat,
        limiter_map=limiter,
        limiter_reduce=limiter,
        prices=PriceTable.from_json(""),
        max_output_tokens=256,
        attempts=attempts,
        throttle_budget_s=throttle_budget_s,
        sleep=time.sleep,
        random=lambda: jitter,  # 0: waits are exactly what the model asks
    )
    world.summarize = lambda: Summarize(  # type: ignore[method-assign]
        world.store,
        world.queue,
        summarizer,
        clock=world.clock,
        retry_event_every_s=retry_event_every_s,
    )
    world.combine = lambda: Combine(  # type: ignore[method-assign]
        world.store, summarizer, clock=world.clock, retry_event_every_s=retry_event_every_s
    )


async def one_source_job(world: World, sources: int = 1) -> tuple[str, list[SummarizeTask]]:
    """A job retrieved and waiting for its summaries: its id and summarize messages."""
    urls = [world.serve(f"/p{i}.html", page(f"Swarms {i}", *PARAGRAPHS)) for i in range(sources)]
    job_id = await world.submit(QUESTION, urls)
    for task in world.queue.take("intake"):
        await world.research().run(task)  # type: ignore[arg-type]
    tasks = [t for t in world.queue.take("summarize") if isinstance(t, SummarizeTask)]
    return job_id, tasks


async def retry_events(world: World, job_id: str) -> list[Event]:
    return [e for _, e in await world.store.events(job_id) if e.kind == "model_retry"]


async def test_a_throttled_source_shows_its_wait_in_events_and_status(
    world: World, models: FakeModelServer, http: httpx.AsyncClient, time: VirtualTime
) -> None:
    model_stages(world, http, time)
    job_id, tasks = await one_source_job(world, sources=2)
    models.fail_next("429", 3, retry_after_s=20)
    time.hold()

    delivery = asyncio.create_task(world.summarize().run(tasks[1]))
    await time.held.wait()  # the model said 429; its retry waits
    for _ in range(100):  # the event is written beside the wait
        view = await world.store.view(job_id)
        if view.sources[1].waiting is not None:
            break
        await asyncio.sleep(0)

    waiting = view.sources[1].waiting
    assert waiting is not None
    assert waiting.detail == (
        "openai:fake-small answered 429 Too Many Requests (attempt 1); retrying in 20 s"
    )
    assert (waiting.provider, waiting.model, waiting.status) == ("openai", "fake-small", 429)
    assert (waiting.retry_after_s, waiting.retry_in_s, waiting.attempt) == (20, 20, 1)
    assert view.sources[0].waiting is None  # the other source waits for nothing
    assert view.state == "summarizing"

    time.release()
    await delivery
    events = await retry_events(world, job_id)
    assert [(e.index, e.retry and e.retry.attempt) for e in events] == [(1, 1), (1, 2), (1, 3)]
    first = events[0]
    assert first.retry is not None
    assert first.retry.model_dump() == {
        "provider": "openai",
        "model": "fake-small",
        "status": 429,
        "throttled": True,
        "retry_after_s": 20.0,
        "retry_in_s": 20.0,
        "attempt": 1,
        "error": "openai:fake-small is rate limited (429): Rate limit reached; slow down",
    }
    # Summarized at the fourth call: the wait is over.
    after = await world.store.view(job_id)
    assert after.summaries_done == 1
    assert after.sources[1].waiting is None


async def test_many_retries_write_few_events(
    world: World, models: FakeModelServer, http: httpx.AsyncClient, time: VirtualTime
) -> None:
    model_stages(world, http, time, retry_event_every_s=5.0)
    job_id, tasks = await one_source_job(world)
    models.fail_next("429", 40, retry_after_s=0.5)  # 40 retries in 20 s of waiting

    await world.summarize().run(tasks[0])

    assert models.stats.statuses[429] == 40
    events = await retry_events(world, job_id)
    # One per 5 s at most: the retries of 0, 5, 10 and 15 s into the storm.
    assert [e.retry.attempt for e in events if e.retry] == [1, 11, 21, 31]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(events)]
    assert len(gaps) == 3
    assert all(5 <= gap < 6 for gap in gaps)  # the world's clock runs on between waits


@pytest.mark.parametrize(
    ("fault", "retry_after_s", "answered"),
    [
        ("429", 20.0, "answered 429 Too Many Requests"),
        ("500", None, "answered 500 Internal Server Error"),
    ],
)
async def test_a_job_the_queue_gives_up_on_names_the_model_and_what_it_answered(
    world: World,
    models: FakeModelServer,
    http: httpx.AsyncClient,
    time: VirtualTime,
    fault: FaultKind,
    retry_after_s: float | None,
    answered: str,
) -> None:
    # Each delivery: two calls that count, plus what throttles the 40 s budget allows.
    model_stages(world, http, time, attempts=2, throttle_budget_s=40.0, jitter=0.5)
    job_id, tasks = await one_source_job(world)
    models.fail_next(fault, 1000, retry_after_s=retry_after_s)  # the model stays down
    body = tasks[0].model_dump_json()

    for _ in range(5):  # maxReceiveCount deliveries, a minute apart
        with pytest.raises(RetryableError):
            await world.summarize().run(parse_task(body, SummarizeTask))
        world.clock.advance(60)
    await world.dead_letter().run(body, DLQ, message_id="m-1", receive_count=5)

    calls = models.stats.statuses[int(fault)]
    view = await world.store.view(job_id)
    assert view.state == "failed"
    assert view.reason is not None
    assert view.reason.startswith(f"the model openai:fake-small {answered} {calls} times in ")
    assert view.reason.endswith("; the summarize step for source 1 was given up")
    failed = [e for _, e in await world.store.events(job_id) if e.kind == "job_failed"]
    assert [e.detail for e in failed] == [view.reason]
    ((_, dead),) = await world.store.dead_messages()
    assert dead.reason == view.reason
    # Every delivery's last failure left the source's status saying so until the end.
    events = await retry_events(world, job_id)
    assert events[-1].detail is not None
    assert events[-1].detail.endswith("; retrying later")


async def test_a_throttled_combine_shows_its_wait_and_its_dead_letter_names_the_model(
    world: World, models: FakeModelServer, http: httpx.AsyncClient, time: VirtualTime
) -> None:
    model_stages(world, http, time, attempts=1, throttle_budget_s=0.0)
    job_id, tasks = await one_source_job(world)
    await world.summarize().run(tasks[0])
    (combine,) = world.queue.take("combine")
    models.fail_next("429", 1, retry_after_s=30)

    with pytest.raises(RetryableError):
        await world.combine().run(combine)  # type: ignore[arg-type]

    view = await world.store.view(job_id)
    assert view.state == "combining"
    assert view.waiting is not None
    assert view.waiting.detail == (
        "openai:fake-small answered 429 Too Many Requests (attempt 1); retrying later"
    )
    await world.dead_letter().run(
        combine.model_dump_json(), DLQ.replace("Summarize", "Combine"), message_id="m-2"
    )
    failed = await world.store.view(job_id)
    assert failed.reason == (
        "the model openai:fake-small answered 429 Too Many Requests once; "
        "the combine step was given up"
    )


@pytest.fixture
def log_lines() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """What `brief.batch` writes, as Lambda's JSON and as the console's text."""
    as_json, as_text = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(as_json), logging.StreamHandler(as_text)]
    handlers[0].setFormatter(logs.JsonFormatter())
    handlers[0].addFilter(logs.CorrelationFilter())
    handlers[1].setFormatter(logs.TextFormatter())
    logger = logging.getLogger("brief.batch")
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield as_json, as_text
    finally:
        for handler in handlers:
            logger.removeHandler(handler)


async def test_a_failed_records_log_line_names_its_job_and_source_from_1(
    world: World,
    models: FakeModelServer,
    http: httpx.AsyncClient,
    time: VirtualTime,
    log_lines: tuple[io.StringIO, io.StringIO],
) -> None:
    model_stages(world, http, time, attempts=1, throttle_budget_s=0.0)
    job_id, tasks = await one_source_job(world, sources=3)
    models.fail_next("500", 1)
    record = {"messageId": "m-7", "body": tasks[2].model_dump_json()}
    stage = world.summarize()

    response = await process_batch(
        [record], lambda r: stage.run(parse_task(r["body"], SummarizeTask)), concurrency=1
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-7"}]}
    as_json, as_text = log_lines
    (line,) = [json.loads(x) for x in as_json.getvalue().splitlines()]
    assert line["message"] == "record failed"
    assert (line["job_id"], line["source"]) == (job_id, 3)
    assert "openai:fake-small failed (500)" in line["reason"]
    (text,) = as_text.getvalue().splitlines()
    assert text.startswith("WARNING brief.batch: record failed (")
    assert f"job_id={job_id}, source=3" in text
