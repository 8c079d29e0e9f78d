"""`brief chaos`: many jobs through the local stack's API under seeded faults, then a ledger.

Submits N jobs through the HTTP API, as users would (a fifth of them as one batch), while
workers die before their acks,
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
- the batch's status (its ledger) says of each of its jobs what the job's own keys say.

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
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from brief_local.template import Template, find_template
from brief_testing.fake_models import FakeModelServer
from brief_testing.faults import FaultInjector, FaultPlan
from brief_testing.pages import SAMPLES, PageServer

if TYPE_CHECKING:  # the stack (botocore and all) is imported when a run starts
    from brief_local.stack import LocalStack

QUESTION = (SAMPLES / "question.txt").read_text().strip()
TERMINAL = ("done", "failed", "cancelled")
FETCH_TIMEOUT_S = 1.5
MODEL_TIMEOUT_S = 2.0
POLL_ATTEMPTS = 4  # tries of each GET /jobs/{id} before the harness gives up
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


@dataclass
class Ledger:
    """The outcome of a chaos run, and the invariants it breached."""

    options: ChaosOptions
    submitted: int = 0
    audits: list[JobAudit] = field(default_factory=list)
    combine_sends: Counter[str] = field(default_factory=Counter)
    report_puts: int = 0
    dlq_left: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    records_returned: int = 0
    run_s: float = 0.0
    peak_rss_mib: float = 0.0
    quiet: bool = True  # the queues drained before the audit
    batch_size: int = 0
    batch_mismatches: list[str] = field(default_factory=list)  # the ledger against the jobs

    def by_state(self, state: str) -> list[JobAudit]:
        """The audited jobs in `state`."""
        return [a for a in self.audits if a.state == state]

    def failure_reasons(self) -> Counter[str]:
        """Failed jobs by reason, with URLs and numbers taken out so that alike ones group."""
        return Counter(_reason_kind(a.reason) for a in self.by_state("failed"))

    def combine_distribution(self) -> Counter[int]:
        """How many jobs had n combine messages sent, for each n (completed jobs)."""
        return Counter(self.combine_sends.get(a.job_id, 0) for a in self.by_state("done"))

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
                "failed one, none overwritten; no summary lost; the batch's status true."
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


def _environment(models: FakeModelServer, plan: FaultPlan) -> dict[str, str]:
    stage = {
        "provider": "openai",
        "base_url": f"{models.url}/v1",
        "api_key": "chaos",
        "timeout_s": MODEL_TIMEOUT_S,
    }
    return {
        "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
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
    try:
        stack_options = StackOptions(
            environment=_environment(models, plan),
            # As in AWS: a failed record comes back when its visibility timeout ends, which
            # is longer than the fan-in claim's timeout (see `_environment`).
            retry_after_s=None,
            visibility_timeout_s=plan.visibility_timeout_s,
            max_pollers=options.max_pollers,
            faults=injector,
        )
        async with LocalStack(stack_options) as stack:
            injector.combine_queue_url = stack.queue_urls.get("CombineQueue", "")
            deadline = started + options.deadline_s
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as api:
                jobs, batch = await _submit_all(api, options, pages, progress)
                ledger.submitted = len(jobs)
                await _wait_all(api, jobs, deadline, progress)
                ledger.quiet = await _settle(stack, deadline, progress)
                ledger.audits = await _audit(stack, list(jobs), injector)
                if batch is not None:
                    ledger.batch_size = len(batch[1])
                    ledger.batch_mismatches = await _check_batch(api, *batch, ledger.audits)
            ledger.dlq_left = await _dlq_depths(stack)
            ledger.records_returned = sum(m.failed_records for m in stack.mappings)
    finally:
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
) -> tuple[dict[str, str], tuple[str, list[str]] | None]:
    """POST every job (a question and sources of its own: no cache answers one job from
    another's), a fifth of them as one batch; job id -> last known state, and the batch's id
    and job ids (None without a batch)."""
    from brief.ids import batch_job_id

    rng = random.Random(options.plan.seed)
    urls = pages.pages()
    bound = asyncio.Semaphore(8)
    bodies = []
    for n in range(options.jobs):
        tag = f"{options.plan.seed}-{n}-{rng.getrandbits(32):08x}"
        chosen = [urls[(n + i) % len(urls)] for i in range(options.sources)]
        sources = [f"{u}?chaos={tag}&i={i}" for i, u in enumerate(chosen)]
        bodies.append({"question": f"{QUESTION} (chaos {tag})", "sources": sources})
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
    _say(progress, f"{len(ids)} jobs submitted ({len(batched)} as one batch)")
    return dict.fromkeys(ids, "queued"), batch


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
    stack: LocalStack, job_ids: Iterable[str], injector: FaultInjector
) -> list[JobAudit]:
    """Each job as the bucket has it (not as the API says: the bucket is the truth)."""
    from brief.jobstore import state_from_keys
    from brief.models import Report, Retrieval

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

        async def one(job_id: str) -> JobAudit:
            prefix = f"jobs/{job_id}/"
            async with bound:
                page = await s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix)
                present = {o["Key"].removeprefix(prefix) for o in page.get("Contents", ())}
                audit = JobAudit(job_id, state_from_keys(present))
                audit.failed_marked = "failed.json" in present
                if audit.failed_marked:
                    failure = json.loads(await read(prefix + "failed.json") or b"{}")
                    audit.reason = failure.get("reason")
                audit.report_writes = injector.report_writes[(job_id, "report.json")]
                audit.markdown_writes = injector.report_writes[(job_id, "report.md")]
                if "report.json" in present and not audit.report_writes:
                    audit.report_writes = -1  # written, but not by a function: impossible
                if audit.state != "done":
                    return audit
                raw_retrieval = await read(prefix + "retrieval.json")
                raw_report = await read(prefix + "report.json")
            if raw_retrieval is None or raw_report is None:
                audit.lost_summaries = [-1]
                return audit
            retrieval = Retrieval.model_validate_json(raw_retrieval)
            report = Report.model_validate_json(raw_report)
            usable = [s.index for s in retrieval.usable]
            audit.lost_summaries = [i for i in usable if f"summaries/{i}.json" not in present]
            cited = {c.index for c in report.citations}
            missing = {m.index for m in report.missing if m.reason}
            audit.unaccounted = [i for i in usable if i not in cited and i not in missing]
            return audit

        return list(await asyncio.gather(*(one(j) for j in job_ids)))


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
        jobs=args.jobs, sources=args.sources, plan=plan, deadline_s=args.deadline
    )
    print(
        f"Chaos: {options.jobs} jobs of {options.sources} sources on the local stack, "
        f"seed {plan.seed}, deadline {options.deadline_s:g} s",
        file=sys.stderr,
    )
    # Retried records and failed calls are the point of the run: their warnings would bury
    # the progress; errors still show.
    for name in ("brief", "brief_local.esm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ledger = asyncio.run(run_chaos(options, progress=sys.stderr))
    print(ledger.render())
    return 1 if ledger.breaches() else 0
