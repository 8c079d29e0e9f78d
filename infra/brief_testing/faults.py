"""Fault injection for the local stack: a seeded plan, and the injector that carries it out.

The faults land where real ones would, so the code that must survive them runs for real:

- **AWS** (`FaultInjector.install`, registered on every S3/SQS client the worker functions
  build): a botocore `before-send` handler answers some requests itself: S3 `503 SlowDown`
  and `500 InternalError` (botocore's retries absorb most; an *outage* fails every attempt of
  a call, so the adapters' error mapping and SQS's redelivery run too), `409
  ConditionalRequestConflict` on conditional writes (the store retries those itself), SQS
  `SendMessageBatch` errors and connection resets, and batches whose every entry is refused.
- **Delivery** (`FaultInjector.crash_after_write`, `duplicate`, asked by the event source
  mapping): a worker killed after its writes and before its ack (no delete, no batch
  report: the messages come back after the visibility timeout), and a batch delivered to
  two invocations at once.
- **Models and pages**: the fake model server's `Faults` and the page server's
  `PageFaults`, built from the same plan (`model_faults`, `page_faults`).

"Seeded": each kind of fault draws from its own RNG seeded by the plan, so a plan makes the
same sequence of decisions every run. Which request meets which decision depends on how the
threads interleave, so a run reproduces its rates, not its exact requests.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote, urlsplit

from brief_testing.fake_models import Faults
from brief_testing.pages import PageFaults

log = logging.getLogger(__name__)

ClientHook = Callable[[str, Any], None]


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong in a chaos run, and how often (each rate a fraction, 0 to 1)."""

    seed: int = 1
    # Delivery, per batch the event source mapping hands to a function.
    crash_after_write: float = 0.0  # the handler ran; the worker dies before its ack
    duplicate_delivery: float = 0.0  # the batch also goes to a second invocation at once
    # AWS, at botocore's level (only the worker functions' clients).
    s3_error: float = 0.0  # per attempt: 503 SlowDown or 500 InternalError
    s3_outage: float = 0.0  # per call: every attempt fails (the adapter maps the error)
    s3_conflict: float = 0.0  # per conditional PutObject attempt: 409 ConditionalRequestConflict
    sqs_error: float = 0.0  # per SendMessageBatch attempt: 500, or the connection reset
    sqs_refused: float = 0.0  # per SendMessageBatch call: every entry refused
    # The fake model server, per request.
    model_429: float = 0.0
    model_500: float = 0.0
    model_timeout: float = 0.0  # answers slower than the stage's timeout
    model_cut: float = 0.0  # streamed answers cut half way
    # The page server, per request.
    page_timeout: float = 0.0  # answers slower than the fetch timeout
    page_reset: float = 0.0  # the connection reset before any answer
    # Short enough that a crashed worker's messages come back within the run.
    visibility_timeout_s: int = 8

    @classmethod
    def calm(cls, seed: int = 1) -> FaultPlan:
        """No faults at all (a baseline run)."""
        return cls(seed=seed)

    @classmethod
    def default(cls, seed: int = 1) -> FaultPlan:
        """Every kind of fault, often enough that each happens many times in 200 jobs and
        rarely enough that most jobs complete."""
        return cls(
            seed=seed,
            crash_after_write=0.05,
            duplicate_delivery=0.05,
            s3_error=0.03,
            s3_outage=0.003,
            s3_conflict=0.02,
            sqs_error=0.05,
            sqs_refused=0.02,
            model_429=0.05,
            model_500=0.03,
            model_timeout=0.01,
            model_cut=0.02,
            page_timeout=0.02,
            page_reset=0.02,
        )

    @classmethod
    def rate_names(cls) -> list[str]:
        """The names of the rates (every field but the seed and the visibility timeout)."""
        return [f.name for f in fields(cls) if f.name not in {"seed", "visibility_timeout_s"}]

    def model_faults(self, *, timeout_s: float) -> Faults:
        """The fake model server's settings; a timed-out answer comes `timeout_s` + 1 s late."""
        return Faults(
            rate_limit=self.model_429,
            server_error=self.model_500,
            slow=self.model_timeout,
            slow_s=timeout_s + 1.0,
            cut_stream=self.model_cut,
            retry_after_s=0.2,
            seed=self.seed,
        )

    def page_faults(self, *, timeout_s: float) -> PageFaults:
        """The page server's settings; a timed-out page comes `timeout_s` + 1 s late."""
        return PageFaults(
            timeout=self.page_timeout,
            reset=self.page_reset,
            stall_s=timeout_s + 1.0,
            seed=self.seed,
        )


class _Body:
    """The raw body of a made-up response (botocore awaits `read()`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, *_: object) -> bytes:
        data, self._data = self._data, b""
        return data


class FaultInjector:
    """Carries out a plan and counts what it did; thread-safe (functions run on threads).

    `combine_sends` counts, per job, the combine messages that reached the queue;
    `report_puts` the PutObject requests for a job's `report.json` that reached S3, and
    `report_writes` those S3 accepted, by job and name (`report.json`, `report.md`): a name
    written twice is a report overwritten. `plan_writes` counts the writes S3 accepted of a
    deep job's level plans (`levels/{L}/plan.json`), by job and level: a plan is written once.
    """

    def __init__(self, plan: FaultPlan, *, functions: Iterable[str] = ()) -> None:
        self.plan = plan
        self.injected: Counter[str] = Counter()
        self.combine_sends: Counter[str] = Counter()
        self.report_puts: Counter[str] = Counter()
        self.report_writes: Counter[tuple[str, str]] = Counter()
        self.plan_writes: Counter[tuple[str, int]] = Counter()
        self.combine_queue_url = ""
        self._functions = tuple(functions)
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}
        self._doomed: set[str] = set()  # invocation ids of calls whose every attempt fails

    # -- decisions ------------------------------------------------------------------------

    def _draw(self, kind: str, rate: float) -> bool:
        """True `rate` of the time, from this kind's own seeded RNG."""
        if rate <= 0:
            return False
        with self._lock:
            rng = self._rngs.get(kind)
            if rng is None:
                rng = self._rngs[kind] = random.Random(f"{self.plan.seed}:{kind}")
            return rng.random() < rate

    def count(self, kind: str, n: int = 1) -> None:
        """Note `n` injected faults of `kind`."""
        with self._lock:
            self.injected[kind] += n

    def crash_after_write(self, function: str) -> bool:
        """Whether this batch's worker dies after its handler returned, before its ack."""
        if self._draw("crash_after_write", self.plan.crash_after_write):
            self.count(f"worker killed before ack ({function})")
            return True
        return False

    def duplicate(self, function: str) -> bool:
        """Whether this batch is also handed to a second invocation at the same time."""
        if self._draw("duplicate_delivery", self.plan.duplicate_delivery):
            self.count(f"duplicate delivery ({function})")
            return True
        return False

    # -- AWS --------------------------------------------------------------------------------

    def install(self, service: str, client: Any) -> None:
        """The wiring's client hook: faults on the worker functions' S3 and SQS clients.

        Functions run on threads named after them (`brief_local.functions`); the API's
        clients are built on the stack's own thread and stay faultless, so every job the
        run submits is accepted.
        """
        name = threading.current_thread().name
        if not any(name.startswith(f) for f in self._functions):
            return
        if service == "s3":
            client.meta.events.register("before-send.s3", self._s3)
            client.meta.events.register("before-parameter-build.s3.PutObject", _remember_key)
            client.meta.events.register("after-call.s3.PutObject", self._written)
        elif service == "sqs":
            client.meta.events.register("before-send.sqs", self._sqs)

    def _s3(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        invocation, attempt = _attempt(request)
        with self._lock:
            doomed = invocation in self._doomed
        if attempt == 1 and self._draw("s3_outage", self.plan.s3_outage):
            with self._lock:
                self._doomed.add(invocation)
            self.count("s3 outage: every attempt of a call 503 SlowDown")
            doomed = True
        if doomed:
            return _s3_error(request, 503, "SlowDown", "Please reduce your request rate.")
        conditional = operation == "PutObject" and "If-None-Match" in request.headers
        if conditional and self._draw("s3_conflict", self.plan.s3_conflict):
            self.count("s3 409 ConditionalRequestConflict")
            return _s3_error(
                request,
                409,
                "ConditionalRequestConflict",
                "A conflicting conditional operation is currently in progress.",
            )
        if self._draw("s3_error", self.plan.s3_error):
            if self._draw("s3_error_kind", 0.5):
                self.count("s3 503 SlowDown")
                return _s3_error(request, 503, "SlowDown", "Please reduce your request rate.")
            self.count("s3 500 InternalError")
            return _s3_error(request, 500, "InternalError", "We encountered an internal error.")
        if operation == "PutObject" and request.method == "PUT":
            key = unquote(urlsplit(request.url).path)
            if key.endswith("/report.json"):
                with self._lock:
                    self.report_puts[key.rsplit("/", 2)[-2]] += 1
        return None

    def _written(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        """Count the report and plan writes S3 accepted (a 412 is not a write)."""
        key = str(context.get(_KEY, ""))
        if not key.startswith("jobs/") or getattr(http_response, "status_code", 0) != 200:
            return
        parts = key.split("/")  # jobs/{job}/report.json, jobs/{job}/levels/{L}/plan.json
        if len(parts) == 3 and parts[2] in {"report.json", "report.md"}:
            with self._lock:
                self.report_writes[(parts[1], parts[2])] += 1
        elif len(parts) == 5 and parts[2:5:2] == ["levels", "plan.json"] and parts[3].isdigit():
            with self._lock:
                self.plan_writes[(parts[1], int(parts[3]))] += 1

    def _sqs(self, request: Any, event_name: str = "", **_: Any) -> Any:
        if not event_name.endswith(".SendMessageBatch"):
            return None
        if self._draw("sqs_error", self.plan.sqs_error):
            if self._draw("sqs_error_kind", 0.5):
                self.count("sqs SendMessageBatch connection reset")
                from botocore.exceptions import ConnectionClosedError

                raise ConnectionClosedError(endpoint_url=request.url)
            self.count("sqs SendMessageBatch 500")
            return _sqs_error(request)
        body: dict[str, Any] = json.loads(request.body or b"{}")
        entries: list[dict[str, Any]] = body.get("Entries") or []
        if _attempt(request)[1] == 1 and self._draw("sqs_refused", self.plan.sqs_refused):
            self.count("sqs SendMessageBatch every entry refused")
            return _sqs_refused(request, entries)
        if body.get("QueueUrl") == self.combine_queue_url:
            for entry in entries:
                job = json.loads(entry.get("MessageBody") or "{}").get("job_id")
                if isinstance(job, str):
                    with self._lock:
                        self.combine_sends[job] += 1
        return None


_KEY = "brief_testing.faults.key"


def _remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep the call's key in its context, where `after-call` finds it."""
    context[_KEY] = params.get("Key", "")


def _attempt(request: Any) -> tuple[str, int]:
    """The call's invocation id and this attempt's number (botocore's own headers)."""
    invocation = str(request.headers.get("amz-sdk-invocation-id") or uuid.uuid4())
    attempt = 1
    for part in str(request.headers.get("amz-sdk-request") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            attempt = int(value)
    return invocation, attempt


def _response(request: Any, status: int, headers: dict[str, str], body: bytes) -> Any:
    from aiobotocore.awsrequest import AioAWSResponse

    sent = {"x-amz-request-id": uuid.uuid4().hex, "Content-Length": str(len(body)), **headers}
    return AioAWSResponse(request.url, status, sent, _Body(body))


def _s3_error(request: Any, status: int, code: str, message: str) -> Any:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    ).encode()
    return _response(request, status, {"Content-Type": "application/xml"}, body)


def _sqs_error(request: Any) -> Any:
    body = json.dumps(
        {"__type": "com.amazonaws.sqs#InternalError", "message": "We encountered an error."}
    ).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-error": "InternalError;Receiver",
    }
    return _response(request, 500, headers, body)


def _sqs_refused(request: Any, entries: list[dict[str, Any]]) -> Any:
    failed = [
        {"Id": e.get("Id"), "SenderFault": False, "Code": "InternalError", "Message": "busy"}
        for e in entries
    ]
    body = json.dumps({"Successful": [], "Failed": failed}).encode()
    return _response(request, 200, {"Content-Type": "application/x-amz-json-1.0"}, body)
