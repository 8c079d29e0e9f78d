"""`brief chaos`: many jobs through the local stack's API under seeded faults, then a ledger.

Submits N jobs through the HTTP API, as users would (a fifth of them as one batch; every
tenth a deep job, depth 2 and breadth 2, whose follow-up questions search a SearXNG-compatible
service on loopback over the same pages), while workers die before their acks,
batches are delivered twice, S3 and SQS fail at botocore's level, the model answers 429,
500, late or half, and pages time out or reset (`brief_testing.faults`). When every job has
ended (or the deadline passed) and the queues are quiet, it reads the bucket directly and
checks the invariants in docs/architecture.md:

- every job is terminal;
- a completed job has exactly one report and a failed one has none; no report is
  overwritten (S3 accepted exactly one PutObject of each of `report.json` and `report.md`,
  counted by the fault hook on the functions' clients);
- no summary is lost: every usable source of a completed job has its summary stored, and
  the report cites it or lists it as missing with a reason;
- the batch's status (its ledger) says of each of its jobs what the job's own keys say;
- a deep job's level plans (`levels/{L}/plan.json`) are written once each, in order; a
  completed deep job's report has a `tree` of one node for the root question and one for
  each follow-up of its plans (as the plans ask them), each node answered by usable sources
  of its own level only, and no level lost a summary: every usable source of every level
  has its summary, and the report cites it or lists it as missing.

The ledger also counts failures by reason, combine messages per job, messages left in each
DLQ, faults by kind, the run time and the process's peak RSS (moto, the API, every function's
containers and the loopback servers all run as threads of this one process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from brief_local.template import Template, find_template
from brief_testing.fake_models import FakeModelServer
from brief_testing.fake_services import FakeServices
from brief_testing.faults import FaultInjector, FaultPlan
from brief_testing.pages import SAMPLES, PageServer

if TYPE_CHECKING:  # the stack (botocore and all) is imported when a run starts
    from brief.models import LevelPlan, Report
    from brief_local.stack import LocalStack

QUESTION = (SAMPLES / "question.txt").read_text().strip()
TERMINAL = ("done", "failed", "cancelled")
# Long enough that a loaded machine (CI beside `make chaos`, 2 cores) does not time out a
# healthy page: at 1.5 s both pages of a deep job did, and it failed at level 1. An injected
# page timeout stalls a second past it.
FETCH_TIMEOUT_S = 5.0
MODEL_TIMEOUT_S = 2.0
POLL_ATTEMPTS = 4  # tries of each GET /jobs/{id} before the harness gives up
# The sweeper's schedule: often enough that a fan-in whose owner's message a duplicate
# delivery acked is resumed within the run (its claim times out after half the visibility
# timeout), not so often that its listings crowd the workers: a sweep lists every open job.
SWEEP_EVERY_S = 10.0
DEEP_DEPTH = 2  # a deep job's depth and breadth: a root and two follow-up searches
DEEP_BREADTH = 2
DEEP_SOURCES = 2  # a deep job's own pages (level 1); its searches find more
_URL = re.compile(r"https?://\S+?(?=[;:)\s]|$)")
_NUMBER = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class ChaosOptions:
    """One chaos run: how many jobs, how many sources each, the faults and the deadline."""

    jobs: int = 200
    sources: int = 3
    plan: FaultPlan = field(default_factory=FaultPlan.default)
    deadline_s: float = 900.0
    max_pollers: int = 4
    deep_every: int = 10  # every n-th job is deep (depth 2, breadth 2); 0: none is

    def is_deep(self, n: int) -> bool:
        """Whether job `n` (from 0, in the order submitted) is a deep one."""
        return self.deep_every > 0 and n % self.deep_every == self.deep_every - 1


@dataclass
class JobAudit:
    """What the bucket says about one job once the run is over."""

    job_id: str
    state: str
    reason: str | None = None
    report_writes: int = 0
    markdown_writes: int = 0
    failed_marked: bool = False
    lost_summaries: list[int] = field(default_factory=list)
    unaccounted: list[int] = field(default_factory=list)  # usable, neither cited nor missing
    # A deep job's levels: how often S3 accepted each plan, the follow-up questions its
    # plans ask, the usable sources of each level, its level_started events, and where its
    # tree and plans disagree (each a breach).
    depth: int = 1
    plan_writes: dict[int, int] = field(default_factory=dict)
    follow_ups: int = 0
    level_usable: dict[int, int] = field(default_factory=dict)
    level_events: int = 0
    tree_problems: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    """The outcome of a chaos run, and the invariants it breached."""

    options: ChaosOptions
    submitted: int = 0
    audits: list[JobAudit] = field(default_factory=list)
    combine_sends: Counter[str] = field(default_factory=Counter)
    resumed: set[str] = field(default_factory=set)  # jobs whose combine the sweeper sent
    report_puts: int = 0
    dlq_left: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    records_returned: int = 0
    run_s: float = 0.0
    peak_rss_mib: float = 0.0
    quiet: bool = True  # the queues drained before the audit
    batch_size: int = 0
    batch_mismatches: list[str] = field(default_factory=list)  # the ledger against the jobs
    deep_submitted: int = 0

    def by_state(self, state: str) -> list[JobAudit]:
        """The audited jobs in `state`."""
        return [a for a in self.audits if a.state == state]

    def deep(self) -> list[JobAudit]:
        """The audited deep jobs."""
        return [a for a in self.audits if a.depth > 1]

    def failure_reasons(self) -> Counter[str]:
        """Failed jobs by reason, with URLs and numbers taken out so that alike ones group."""
        return Counter(_reason_kind(a.reason) for a in self.by_state("failed"))

    def combine_distribution(self) -> Counter[int]:
        """How many jobs had n combine messages sent, for each n (completed jobs; a sweep that
        resumed a job's fan-in sent one too)."""
        return Counter(
            self.combine_sends.get(a.job_id, 0) + (a.job_id in self.resumed)
            for a in self.by_state("done")
        )

    def breaches(self) -> list[str]:
        """Every broken invariant, one line each; empty when the run held them all."""
        found: list[str] = []
        if len(self.audits) != self.submitted:
            found.append(f"audited {len(self.audits)} jobs of {self.submitted} submitted")
        for a in self.audits:
            if a.state not in TERMINAL:
                found.append(f"job {a.job_id} never ended: still {a.state}")
            if a.state == "done":
                if a.report_writes != 1:
                    found.append(f"job {a.job_id}: report.json written {a.report_writes} times")
                if a.markdown_writes != 1:
                    found.append(f"job {a.job_id}: report.md written {a.markdown_writes} times")
                if a.failed_marked:
                    found.append(f"job {a.job_id} was marked failed and still got a report")
                if a.lost_summaries:
                    found.append(f"job {a.job_id} lost the summaries of {a.lost_summaries}")
                if a.unaccounted:
                    found.append(f"job {a.job_id}'s report omits sources {a.unaccounted}")
            if a.state == "failed":
                if a.report_writes:
                    found.append(f"failed job {a.job_id} has a report")
                if not a.reason:
                    found.append(f"failed job {a.job_id} gives no reason")
            for level, writes in sorted(a.plan_writes.items()):
                if writes != 1:
                    found.append(
                        f"deep job {a.job_id}: levels/{level}/plan.json written {writes} times"
                        if writes > 0
                        else f"deep job {a.job_id}: levels/{level}/plan.json stored, not by "
                        "a function"
                    )
            found += [f"deep job {a.job_id}: {p}" for p in a.tree_problems]
        if len(self.deep()) != self.deep_submitted:
            found.append(f"audited {len(self.deep())} deep jobs of {self.deep_submitted}")
        found += self.batch_mismatches
        return found

    def render(self) -> str:
        """The ledger as a person reads it."""
        o = self.options
        done, failed = self.by_state("done"), self.by_state("failed")
        running = [a for a in self.audits if a.state not in TERMINAL]
        lines = [
            f"Chaos run: {self.submitted} jobs of {o.sources} sources, seed {o.plan.seed}, "
            f"in {self.run_s:.1f} s (deadline {o.deadline_s:g} s)",
            f"Jobs: {self.submitted} submitted, {len(done)} completed, {len(failed)} failed, "
            f"{len(running)} not ended",
        ]
        for reason, n in self.failure_reasons().most_common():
            lines.append(f"  failed x{n}: {reason}")
        deep = self.deep()
        if self.deep_submitted:
            deep_done = [a for a in deep if a.state == "done"]
            grown = [a for a in deep_done if a.plan_writes]
            found = sum(a.level_usable.get(2, 0) for a in deep_done)
            events = sum(a.level_events for a in deep)
            plans = sum(len(a.plan_writes) for a in deep)
            lines.append(
                f"Deep jobs (depth {DEEP_DEPTH}, breadth {DEEP_BREADTH}, {DEEP_SOURCES} pages "
                f"each): {self.deep_submitted} submitted, {len(deep_done)} completed, "
                f"{sum(1 for a in deep if a.state == 'failed')} failed; {len(grown)} completed "
                f"ones grew a level 2 ({sum(a.follow_ups for a in grown)} follow-up questions, "
                f"{found} usable sources found by their searches); {plans} plans stored, "
                f"{events} level_started events"
            )
            for a in deep:
                if a.state != "done":
                    level = max(a.plan_writes, default=1)
                    lines.append(f"  deep job {a.job_id} {a.state} at level {level}: {a.reason}")
                if a.level_events != len(a.plan_writes):
                    # Not an invariant of docs/architecture.md: a progress event, shown here.
                    lines.append(
                        f"  noticed: deep job {a.job_id} has {len(a.plan_writes)} plans and "
                        f"{a.level_events} level_started events"
                    )
        reports = sum(1 for a in self.audits if a.report_writes)
        writes = sum(a.report_writes for a in self.audits)
        lines.append(
            f"Reports: {reports} written ({self.report_puts} PUTs of report.json reached S3, "
            f"{writes} accepted)"
        )
        spread = ", ".join(
            f"{n} sent: {jobs} jobs" for n, jobs in sorted(self.combine_distribution().items())
        )
        lines.append(f"Combine messages per completed job: {spread or 'none'}")
        lines.append(
            f"Fan-ins the sweeper resumed (every summary stored, no combine sent): "
            f"{len(self.resumed)} jobs"
        )
        dlqs = ", ".join(f"{name} {n}" for name, n in sorted(self.dlq_left.items()))
        lines.append(f"Messages left in DLQs: {dlqs}" + ("" if self.quiet else " (not quiet)"))
        lines.append(f"Records returned to their queues by failures: {self.records_returned}")
        if self.batch_size:
            agree = self.batch_size - len(self.batch_mismatches)
            lines.append(f"Batch: {agree} of its {self.batch_size} jobs as its status says")
        lines.append(f"Faults injected: {sum(self.faults.values())}")
        for kind, n in sorted(self.faults.items()):
            lines.append(f"  {n:6d}  {kind}")
        lines.append(
            f"Peak RSS: {self.peak_rss_mib:.0f} MiB (one process: moto, the API, every "
            "function's containers as threads, and the page and model servers)"
        )
        breaches = self.breaches()
        if breaches:
            lines.append(f"INVARIANTS BREACHED ({len(breaches)}):")
            lines += [f"  {b}" for b in breaches]
        else:
            lines.append(
                "Invariants held: every job ended; one report per completed job, none per "
                "failed one, none overwritten; no summary lost; the batch's status true; "
                "each deep job's plans written once, its report's tree one node per question "
                "of its plans, every level's summaries kept."
            )
        return "\n".join(lines)


def _reason_kind(reason: str | None) -> str:
    if not reason:
        return "no reason given"
    text = _NUMBER.sub("N", _URL.sub("<url>", reason))
    return text if len(text) <= 160 else text[:159] + "…"


def _sqs_functions() -> list[str]:
    template = Template.load(find_template())
    return [f.logical_id for f in template.functions.values() if f.sqs_events]


def _environment(models: FakeModelServer, plan: FaultPlan, search: FakeServices) -> dict[str, str]:
    stage = {
        "provider": "openai",
        "base_url": f"{models.url}/v1",
        "api_key": "chaos",
        "timeout_s": MODEL_TIMEOUT_S,
    }
    return {
        "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
        # A deep job's follow-up questions are web searches: the fake SearXNG over the
        # sample pages, whose results the page server (with its faults) serves.
        "BRIEF_SEARCH_PROVIDER": "searxng",
        "BRIEF_SEARXNG_URL": search.url,
        "BRIEF_FETCH_TIMEOUT_S": str(FETCH_TIMEOUT_S),
        "BRIEF_FETCH_READ_TIMEOUT_S": str(FETCH_TIMEOUT_S),
        "BRIEF_SUMMARIZE_MODEL": json.dumps({**stage, "model": "map"}),
        "BRIEF_COMBINE_MODEL": json.dumps({**stage, "model": "reduce"}),
        # A fan-in claim whose sender died is taken over after this long: shorter than the
        # time between redeliveries (the visibility timeout), as in the template, or a failed
        # send would burn every receive and send the job to the DLQ.
        "BRIEF_COMBINE_CLAIM_TIMEOUT_S": str(max(1, plan.visibility_timeout_s // 2)),
    }


async def run_chaos(options: ChaosOptions, progress: TextIO | None = None) -> Ledger:
    """Run the jobs under the plan's faults; the ledger, audited from the bucket."""
    from brief_local.stack import LocalStack, StackOptions

    started = time.monotonic()
    plan = options.plan
    ledger = Ledger(options)
    injector = FaultInjector(plan, functions=_sqs_functions())
    pages = PageServer(SAMPLES, faults=plan.page_faults(timeout_s=FETCH_TIMEOUT_S)).start()
    models = FakeModelServer(faults=plan.model_faults(timeout_s=MODEL_TIMEOUT_S)).start()
    search = FakeServices(pages.url).start()
    try:
        stack_options = StackOptions(
            environment=_environment(models, plan, search),
            # As in AWS: a failed record comes back when its visibility timeout ends, which
            # is longer than the fan-in claim's timeout (see `_environment`).
            retry_after_s=None,
            visibility_timeout_s=plan.visibility_timeout_s,
            max_pollers=options.max_pollers,
            faults=injector,
            schedule_every_s=SWEEP_EVERY_S,
        )
        async with LocalStack(stack_options) as stack:
            for schedule in stack.schedules:
                schedule.on_result = partial(_note_sweep, ledger)
            injector.combine_queue_url = stack.queue_urls.get("CombineQueue", "")
            deadline = started + options.deadline_s
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as api:
                jobs, batch, deep = await _submit_all(api, options, pages, progress)
                ledger.submitted = len(jobs)
                ledger.deep_submitted = len(deep)
                await _wait_all(api, jobs, deadline, progress)
                ledger.quiet = await _settle(stack, deadline, progress)
                ledger.audits = await _audit(stack, list(jobs), injector, deep)
                if batch is not None:
                    ledger.batch_size = len(batch[1])
                    ledger.batch_mismatches = await _check_batch(api, *batch, ledger.audits)
            ledger.dlq_left = await _dlq_depths(stack)
            ledger.records_returned = sum(m.failed_records for m in stack.mappings)
    finally:
        search.stop()
        models.stop()
        pages.stop()
    ledger.combine_sends = Counter(injector.combine_sends)
    ledger.report_puts = sum(injector.report_puts.values())
    ledger.faults = Counter(injector.injected)
    for kind, n in pages.injected.items():
        ledger.faults[f"page {kind}"] += n
    stats = models.stats
    model_faults = {
        "model 429": stats.statuses.get(429, 0),
        "model 500": stats.statuses.get(500, 0),
        "model stream cut": stats.cut,
    }
    for kind, n in model_faults.items():
        if n:
            ledger.faults[kind] += n
    ledger.run_s = time.monotonic() - started
    ledger.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ledger


def _note_sweep(ledger: Ledger, response: Any) -> None:
    """Keep the jobs a sweep resumed (its response: `brief.sweeper.SweepReport.as_dict`)."""
    if isinstance(response, dict):
        ledger.resumed.update(str(j) for j in response.get("resumed") or ())


def _aws(stack: LocalStack, service: str) -> Any:
    """A client of the stack's moto for the run itself: no faults (it is not a function's)."""
    import aioboto3
    from aiobotocore.config import AioConfig

    return aioboto3.Session().client(
        service,
        region_name="us-east-1",
        endpoint_url=stack.endpoint,
        config=AioConfig(max_pool_connections=16, retries={"mode": "standard"}),
    )


async def _submit_all(
    api: httpx.AsyncClient, options: ChaosOptions, pages: PageServer, progress: TextIO | None
) -> tuple[dict[str, str], tuple[str, list[str]] | None, set[str]]:
    """POST every job (a question and sources of its own: no cache answers one job from
    another's), a fifth of them as one batch; job id -> last known state, the batch's id
    and job ids (None without a batch), and the ids of the deep jobs.

    A deep job (`options.is_deep`) starts from `DEEP_SOURCES` pages of its own; its
    follow-ups' searches find the sample pages at their plain URLs, which deep jobs share
    (their texts are cached by URL; their summaries, by the job's question, are not)."""
    from brief.ids import batch_job_id

    rng = random.Random(options.plan.seed)
    urls = pages.pages()
    bound = asyncio.Semaphore(8)
    bodies: list[dict[str, Any]] = []
    for n in range(options.jobs):
        tag = f"{options.plan.seed}-{n}-{rng.getrandbits(32):08x}"
        is_deep = options.is_deep(n)
        count = DEEP_SOURCES if is_deep else options.sources
        chosen = [urls[(n + i) % len(urls)] for i in range(count)]
        sources = [f"{u}?chaos={tag}&i={i}" for i, u in enumerate(chosen)]
        body: dict[str, Any] = {"question": f"{QUESTION} (chaos {tag})", "sources": sources}
        if is_deep:
            body |= {"depth": DEEP_DEPTH, "breadth": DEEP_BREADTH}
        bodies.append(body)
    batched, single = bodies[: options.jobs // 5], bodies[options.jobs // 5 :]

    async def submit(body: dict[str, Any]) -> str:
        async with bound:
            answer = await api.post("/jobs", json=body)
        answer.raise_for_status()
        job_id: str = answer.json()["job_id"]
        return job_id

    ids = list(await asyncio.gather(*(submit(b) for b in single)))
    batch = None
    if batched:
        answer = await api.post("/batches", json={"jobs": batched})
        answer.raise_for_status()
        batch_id: str = answer.json()["batch_id"]
        batch = batch_id, [batch_job_id(batch_id, n) for n in range(len(batched))]
        ids += batch[1]
    numbers = [*range(len(batched), options.jobs), *range(len(batched))]  # as `ids` has them
    deep = {job_id for n, job_id in zip(numbers, ids, strict=True) if options.is_deep(n)}
    _say(
        progress,
        f"{len(ids)} jobs submitted ({len(batched)} as one batch, {len(deep)} deep)",
    )
    return dict.fromkeys(ids, "queued"), batch, deep


async def _check_batch(
    api: httpx.AsyncClient, batch_id: str, job_ids: list[str], audits: list[JobAudit]
) -> list[str]:
    """Where the batch's status disagrees with its jobs' own states."""
    said: dict[str, str] = {}
    after = -1
    while True:
        answer = await _get_retrying(api, f"/batches/{batch_id}?after={after}")
        if answer is None or answer.status_code != 200:
            return [f"the batch's status could not be read: {answer and answer.status_code}"]
        page = answer.json()
        said.update((j["job_id"], j["state"]) for j in page["jobs"])
        if page["cursor"] is None:
            break
        after = page["cursor"]
    states = {a.job_id: a.state for a in audits}
    return [
        f"batch job {n} ({job_id}): the batch says {said.get(job_id)}, the job is "
        f"{states.get(job_id)}"
        for n, job_id in enumerate(job_ids)
        if said.get(job_id) != states.get(job_id)
    ]


async def _wait_all(
    api: httpx.AsyncClient, jobs: dict[str, str], deadline: float, progress: TextIO | None
) -> None:
    """Poll the API until every job has ended or the deadline passes. A few jobs per round,
    oldest first: polling every job every second would take the CPU the workers need."""
    shown = ""
    turn = 0
    while time.monotonic() < deadline:
        pending = [j for j, s in jobs.items() if s not in TERMINAL]
        if not pending:
            break
        start = turn % len(pending)
        turn += 16

        async def poll(job_id: str) -> None:
            answer = await _get_retrying(api, f"/jobs/{job_id}")
            if answer is not None and answer.status_code == 200:
                jobs[job_id] = answer.json()["state"]

        await asyncio.gather(*(poll(j) for j in (pending[start:] + pending[:start])[:16]))
        counts = Counter(jobs.values())
        line = " · ".join(f"{s} {n}" for s, n in sorted(counts.items()))
        if line != shown:
            _say(progress, line)
            shown = line
        await asyncio.sleep(0.5)


async def _get_retrying(
    api: httpx.AsyncClient, path: str, attempts: int = POLL_ATTEMPTS, backoff_s: float = 0.25
) -> httpx.Response | None:
    """GET `path`, again after a dropped connection or a 5xx (0.25, 0.5, 1 s later): the
    harness only watches the run, whose invariants are read from the bucket, and must not end
    it over one lost poll. None if the last attempt got a 5xx too; a transport error on the
    last attempt is raised (the API is gone, not busy)."""
    for attempt in range(attempts - 1):
        try:
            answer = await api.get(path)
        except httpx.TransportError:
            pass
        else:
            if answer.status_code < 500:
                return answer
        await asyncio.sleep(backoff_s * 2**attempt)
    answer = await api.get(path)
    return answer if answer.status_code < 500 else None


async def _settle(stack: LocalStack, deadline: float, progress: TextIO | None) -> bool:
    """Wait until no queue holds a message (visible or in flight), so that nothing still
    running can change a job after the audit; False if the deadline came first."""
    async with _aws(stack, "sqs") as sqs:
        quiet_rounds = 0
        while time.monotonic() < deadline + 60:
            total = 0
            for url in stack.queue_urls.values():
                attributes = await sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
                values = attributes.get("Attributes", {})
                total += sum(int(v) for v in values.values())
            quiet_rounds = quiet_rounds + 1 if total == 0 else 0
            if quiet_rounds >= 2:
                return True
            _say(progress, f"waiting for {total} queued messages to settle")
            await asyncio.sleep(1.0)
    return False


async def _dlq_depths(stack: LocalStack) -> dict[str, int]:
    dlqs = {name: url for name, url in stack.queue_urls.items() if "DeadLetter" in name}
    depths: dict[str, int] = {}
    async with _aws(stack, "sqs") as sqs:
        for name, url in dlqs.items():
            attributes = await sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            depths[name] = sum(int(v) for v in attributes.get("Attributes", {}).values())
    return depths


async def _audit(
    stack: LocalStack, job_ids: Iterable[str], injector: FaultInjector, deep: set[str]
) -> list[JobAudit]:
    """Each job as the bucket has it (not as the API says: the bucket is the truth)."""
    from brief.jobstore import state_from_keys
    from brief.models import LevelPlan, Report, Retrieval

    bound = asyncio.Semaphore(8)
    async with _aws(stack, "s3") as s3:

        async def read(key: str) -> bytes | None:
            try:
                obj = await s3.get_object(Bucket=stack.bucket, Key=key)
            except s3.exceptions.NoSuchKey:
                return None
            async with obj["Body"] as body:
                data: bytes = await body.read()
                return data

        async def listing(prefix: str) -> set[str]:
            present: set[str] = set()
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=stack.bucket, Prefix=prefix):
                present |= {o["Key"].removeprefix(prefix) for o in page.get("Contents", ())}
            return present

        async def one(job_id: str) -> JobAudit:
            prefix = f"jobs/{job_id}/"
            depth = DEEP_DEPTH if job_id in deep else 1
            async with bound:
                present = await listing(prefix)
                audit = JobAudit(job_id, state_from_keys(present), depth=depth)
                audit.failed_marked = "failed.json" in present
                if audit.failed_marked:
                    failure = json.loads(await read(prefix + "failed.json") or b"{}")
                    audit.reason = failure.get("reason")
                audit.report_writes = injector.report_writes[(job_id, "report.json")]
                audit.markdown_writes = injector.report_writes[(job_id, "report.md")]
                if "report.json" in present and not audit.report_writes:
                    audit.report_writes = -1  # written, but not by a function: impossible
                levels = range(2, depth + 1)
                planned = [n for n in levels if f"levels/{n}/plan.json" in present]
                audit.plan_writes = {n: injector.plan_writes[(job_id, n)] for n in planned}
                audit.level_events = sum(
                    1 for k in present if k.startswith("events/") and "-level_started" in k
                )
                if audit.state != "done":
                    return audit
                raw_report = await read(prefix + "report.json")
                raw_retrievals = {1: await read(prefix + "retrieval.json")}
                for n in levels:
                    if f"levels/{n}/retrieval.json" in present:
                        raw_retrievals[n] = await read(prefix + f"levels/{n}/retrieval.json")
                raw_plans = {n: await read(prefix + f"levels/{n}/plan.json") for n in planned}
            if raw_retrievals.get(1) is None or raw_report is None:
                audit.lost_summaries = [-1]
                return audit
            retrievals = {
                n: Retrieval.model_validate_json(raw)
                for n, raw in raw_retrievals.items()
                if raw is not None
            }
            report = Report.model_validate_json(raw_report)
            usable = {n: [s.index for s in r.usable] for n, r in sorted(retrievals.items())}
            audit.level_usable = {n: len(u) for n, u in usable.items()}
            every = [i for u in usable.values() for i in u]
            audit.lost_summaries = [i for i in every if f"summaries/{i}.json" not in present]
            cited = {c.index for c in report.citations}
            missing = {m.index for m in report.missing if m.reason}
            audit.unaccounted = [i for i in every if i not in cited and i not in missing]
            if depth > 1:
                plans = [LevelPlan.model_validate_json(raw or b"") for raw in raw_plans.values()]
                audit.follow_ups = sum(len(p.follow_ups) for p in plans)
                audit.tree_problems = tree_problems(report, plans, usable, present)
            elif report.tree is not None:
                audit.tree_problems = ["a job of depth 1 has a tree"]
            return audit

        return list(await asyncio.gather(*(one(j) for j in job_ids)))


def tree_problems(
    report: Report, plans: list[LevelPlan], usable: dict[int, list[int]], present: set[str]
) -> list[str]:
    """Where a completed deep job's report, plans and levels disagree: the tree is the root
    and each plan's follow-ups in order, each node answered by usable sources of its own
    level (together, every one of them; a page two searches found answers both); a level
    planned ran (its retrieval is stored) and no level ran unplanned; every source the
    report cites is a usable one with its summary."""
    problems: list[str] = []
    levels = [p.level for p in plans]
    if levels != list(range(2, 2 + len(plans))):
        problems.append(f"plans of levels {levels}: a level planned without the one before")
    for level in levels:
        if level not in usable:
            problems.append(f"level {level} was planned but its retrieval is not stored")
    for level in usable:
        if level > 1 and level not in levels:
            problems.append(f"level {level} ran without a plan")
    if not report.tree:
        return [*problems, "the report has no tree"]
    root, *rest = report.tree
    if (root.node, root.parent, root.level, root.question) != ("1", None, 1, report.question):
        problems.append(f"the tree's root is {root.node} at level {root.level}, not the question")
    planned = [(f.node, f.parent, f.question, p.level) for p in plans for f in p.follow_ups]
    grown = [(n.node, n.parent, n.question, n.level) for n in rest]
    if grown != planned:
        problems.append(
            f"the tree's {len(rest)} follow-ups are not the plans' {len(planned)}: "
            f"{[n[0] for n in grown]} against {[n[0] for n in planned]}"
        )
    for level, indexes in usable.items():
        # A page two searches of a level found is read once and answers both questions.
        nodes = [n for n in report.tree if n.level == level]
        answered = sorted({i for n in nodes for i in n.sources})
        if answered != sorted(indexes):
            problems.append(
                f"level {level}'s nodes name sources {answered}, its usable ones are "
                f"{sorted(indexes)}"
            )
        problems += [
            f"node {n.node} names a source twice: {n.sources}"
            for n in nodes
            if len(set(n.sources)) != len(n.sources)
        ]
    every = {i for u in usable.values() for i in u}
    for c in report.citations:
        if c.index not in every:
            problems.append(f"the report cites [{c.n}], not a usable source of any level")
        elif f"summaries/{c.index}.json" not in present:
            problems.append(f"the report cites [{c.n}], whose summary is not stored")
    return problems


def _say(progress: TextIO | None, line: str) -> None:
    if progress is not None:
        progress.write(f"  {line}\n")
        progress.flush()


# -- the `brief chaos` command ----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`brief chaos`'s options (the run's size, the seed, and any rate of the plan) and `run`."""
    parser.set_defaults(run=run)
    parser.add_argument("--jobs", type=int, default=200, help="jobs to run (default 200)")
    parser.add_argument("--sources", type=int, default=3, help="sources per job (default 3)")
    parser.add_argument(
        "--deep-every",
        type=int,
        default=10,
        metavar="N",
        help=f"every N-th job is deep: depth {DEEP_DEPTH}, breadth {DEEP_BREADTH}, from "
        f"{DEEP_SOURCES} pages (default 10; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the faults' seed (default 1)")
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="seconds for the whole run (default 900)"
    )
    parser.add_argument(
        "--calm", action="store_true", help="no faults (a baseline); rates given still apply"
    )
    parser.add_argument(
        "--visibility",
        type=int,
        default=None,
        help="every queue's visibility timeout in seconds (default "
        f"{FaultPlan.visibility_timeout_s})",
    )
    plan = FaultPlan.default()
    for name in FaultPlan.rate_names():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=None,
            metavar="RATE",
            help=f"default {getattr(plan, name):g}",
        )


def run(args: argparse.Namespace) -> int:
    """Run the jobs, print the ledger; 1 when an invariant was breached."""
    plan = FaultPlan.calm(args.seed) if args.calm else FaultPlan.default(args.seed)
    rates = {
        name: getattr(args, name)
        for name in FaultPlan.rate_names()
        if getattr(args, name) is not None
    }
    if args.visibility is not None:
        rates["visibility_timeout_s"] = args.visibility
    plan = replace(plan, **rates)
    options = ChaosOptions(
        jobs=args.jobs,
        sources=args.sources,
        plan=plan,
        deadline_s=args.deadline,
        deep_every=args.deep_every,
    )
    deep = sum(1 for n in range(options.jobs) if options.is_deep(n))
    print(
        f"Chaos: {options.jobs} jobs of {options.sources} sources ({deep} of them deep) on "
        f"the local stack, seed {plan.seed}, deadline {options.deadline_s:g} s",
        file=sys.stderr,
    )
    # Retried records and failed calls are the point of the run: their warnings would bury
    # the progress; errors still show.
    for name in ("brief", "brief_local.esm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ledger = asyncio.run(run_chaos(options, progress=sys.stderr))
    print(ledger.render())
    return 1 if ledger.breaches() else 0
