"""Secrets and document text never reach the logs, on a job run end to end.

A job is created through the API with the caller's API key, its page holds a canary
sentence, and the model (an OpenAI-compatible provider behind a MockTransport) is reached
with a canary API key from the settings and answers with the canary sentence, as a summary
quoting its source would. Every record of every logger is kept at DEBUG (the libraries'
too, lower than a deployment logs them), through both of Brief's JSON formats: the local
one, and Powertools' Logger that Lambda containers print to stdout. No canary may appear.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from brief import logs
from brief.api import create_app
from brief.api.auth import new_key, settings_entry
from brief.messages import CombineTask, ResearchTask, SubmitTask, SummarizeTask
from brief.pipeline import Combine, Summarize
from brief.settings import Settings
from brief.wiring import Wiring
from tests.unit.llm.http_fakes import sse, stream_response

from .api_world import WorldWiring
from .world import World, page

CALLER_KEY = new_key()
MODEL_KEY = "sk-canary-MODELKEY-5f1c9e0a7b"
SENTENCE = "The quartz lantern canary hums at midnight in Zebrafield."
CANARIES = {"caller's API key": CALLER_KEY, "model API key": MODEL_KEY, "document": SENTENCE}


class Records(logging.Handler):
    """Keeps every record, whatever its level, with everything it carries."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        """Each record's message, arguments, extras and exception, as one text."""
        formatter = logging.Formatter()
        return "\n".join(
            f"{r.getMessage()} {r.args!r} {vars(r)!r} "
            + (formatter.formatException(r.exc_info) if r.exc_info else "")
            for r in self.records
        )


@pytest.fixture
def captured() -> Iterator[tuple[Records, io.StringIO]]:
    """Root at DEBUG with a record keeper and a JSON-lines writer; restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("brief").level)
    records, lines = Records(), io.StringIO()
    writer = logging.StreamHandler(lines)
    writer.setFormatter(logs.JsonFormatter())
    writer.addFilter(logs.CorrelationFilter())
    root.addHandler(records)
    root.addHandler(writer)
    root.setLevel(logging.DEBUG)
    try:
        yield records, lines
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("brief").setLevel(saved[2])


def model_server(requests: list[httpx.Request]) -> httpx.MockTransport:
    """An OpenAI-compatible model that answers every call with the canary sentence."""

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": f"{SENTENCE} [1]"}}]}
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        usage = {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 12}}
        return stream_response(sse((None, chunk), (None, done), (None, usage), (None, "[DONE]")))

    return httpx.MockTransport(handler)


async def run_job(world: World, model_requests: list[httpx.Request]) -> dict[str, Any]:
    """Create a job through the API with the caller's key, run every stage, read the job."""
    settings = Settings(
        bucket="in-memory",
        api_keys=(settings_entry("canary", CALLER_KEY),),
        summarize_model={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": "http://models.test/v1",
            "api_key": MODEL_KEY,
        },
    )
    models = Wiring(settings, http_transport=model_server(model_requests))
    summarizer = await models.summarizer()
    url = world.serve("/canary.html", page("Zebrafield notes", SENTENCE, "Glaciers flow."))
    app = create_app(lambda: WorldWiring(world, settings))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://brief.test",
        headers={"Authorization": f"Bearer {CALLER_KEY}"},
    ) as client:
        created = await client.post(
            "/jobs", json={"question": "What hums in Zebrafield?", "sources": [url]}
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        summarize = Summarize(world.store, world.queue, summarizer, claim_timeout_s=60)
        combine = Combine(world.store, summarizer)
        research = world.research()
        while any(world.queue.sent.values()):
            for task in world.queue.take("intake"):
                assert isinstance(task, ResearchTask | SubmitTask)
                await research.run(task)
            for task in world.queue.take("summarize"):
                assert isinstance(task, SummarizeTask)
                await summarize.run(task)
            for task in world.queue.take("combine"):
                assert isinstance(task, CombineTask)
                await combine.run(task)
        view: dict[str, Any] = (await client.get(f"/jobs/{job_id}")).json()
        report = await client.get(f"/jobs/{job_id}/report", headers={"accept": "text/markdown"})
    await models.aclose()
    view["report"] = report.text
    return view


async def test_no_key_and_no_document_text_is_logged_by_a_job_run_end_to_end(
    world: World, captured: tuple[Records, io.StringIO]
) -> None:
    records, lines = captured
    model_requests: list[httpx.Request] = []

    view = await run_job(world, model_requests)

    # The run was real: the document reached the model with its key, and the report quotes it.
    assert view["state"] == "done", view
    assert SENTENCE in view["report"]
    assert any(SENTENCE in r.content.decode() for r in model_requests)
    assert {r.headers["authorization"] for r in model_requests} == {f"Bearer {MODEL_KEY}"}
    assert records.records, "nothing was logged: the capture is not working"
    for name, canary in CANARIES.items():
        assert canary not in records.text(), f"the {name} is in a log record"
        assert canary not in lines.getvalue(), f"the {name} is in a JSON log line"


async def test_nor_by_the_lambda_logger_on_stdout(
    world: World, captured: tuple[Records, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure_lambda("DEBUG", service="brief-canary")
    logging.getLogger().setLevel(logging.DEBUG)  # the libraries too, below Lambda's WARNING
    model_requests: list[httpx.Request] = []

    view = await run_job(world, model_requests)

    assert view["state"] == "done", view
    printed = capsys.readouterr().out
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert lines, "Powertools printed nothing: the capture is not working"
    for name, canary in CANARIES.items():
        assert canary not in printed, f"the {name} is in a line Powertools printed"
