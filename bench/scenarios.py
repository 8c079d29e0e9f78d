"""The measurements of issue 6, each on its own local stack and loopback servers."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bench import baselines
from bench.fixtures import QUESTION, SEED, SHORT, Latencies, serving
from bench.idle import cpu_by_role, tree_cpu_seconds
from bench.jobs import Job, run_one, submit, wait
from bench.loopwatch import watching
from brief_local.functions import ThreadContainer
from brief_local.stack import LocalStack, StackOptions
from brief_testing.fake_models import Faults

Figures = dict[str, Any]


@asynccontextmanager
async def warm_stack(
    servers: Any, options: StackOptions, *, connections: int = 32
) -> AsyncIterator[tuple[LocalStack, httpx.AsyncClient]]:
    """A local stack and a client for its API, once one job has warmed every function."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with (
        LocalStack(options) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as api,
    ):
        tag = secrets.token_hex(4)
        await run_one(api, _question(tag), servers.sources(tag))
        yield stack, api


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _question(tag: str) -> str:
    # A question of its own per job: the summary cache is keyed by question, so no job of a
    # run is answered from another's cache (except where a scenario wants exactly that).
    return f"{QUESTION} (bench {tag})"


async def seed_and_cache(runs: int) -> tuple[Figures, Figures, Job]:
    """Scenario 1 (the seed job three ways) and 4 (the same job again, from the caches)."""
    seq: list[float] = []
    gat: list[float] = []
    brief: list[Job] = []
    with serving(SEED) as servers:
        for _ in range(runs):
            tag = secrets.token_hex(4)
            seq.append(
                await baselines.sequential(_question(tag), servers.sources(tag), servers.models.url)
            )
            tag = secrets.token_hex(4)
            gat.append(
                await baselines.gathered(_question(tag), servers.sources(tag), servers.models.url)
            )
        async with (
            LocalStack(servers.stack_options()) as stack,
            httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api,
        ):
            tag = secrets.token_hex(4)  # the first job pays every function's cold start
            cold = await run_one(api, _question(tag), servers.sources(tag))
            for _ in range(runs):
                tag = secrets.token_hex(4)
                brief.append(await run_one(api, _question(tag), servers.sources(tag)))
            cache = await _repeat(api, servers)
    ok = [j for j in brief if j.duration_s is not None]
    brief_s = _median([j.duration_s for j in ok if j.duration_s is not None])
    seq_s, gat_s = _median(seq), _median(gat)
    typical = min(ok, key=lambda j: abs((j.duration_s or 0) - brief_s)) if ok else brief[0]
    seed = {
        "latencies": vars(SEED),
        "runs": runs,
        "sequential_s": seq,
        "gather_s": gat,
        "brief_s": [j.duration_s for j in brief],
        "brief_first_job_cold_s": cold.duration_s,
        "median_sequential_s": seq_s,
        "median_gather_s": gat_s,
        "median_brief_s": brief_s,
        "brief_over_gather": brief_s / gat_s,
        "sequential_over_brief": seq_s / brief_s,
        "critical_path_s": SEED.fetch_s + SEED.summarize_s + SEED.combine_s,
        "brief_stages_s": _stages(typical),
        "brief_jobs_completed": f"{len(ok)}/{len(brief)}",
    }
    return seed, cache, typical


def _stages(job: Job) -> dict[str, float | None]:
    """Where one job's time went, from its own events (seconds since submission)."""
    return {
        kind: job.at(kind)
        for kind in (
            "job_created",
            "retrieval_started",
            "retrieval_done",
            "summary_done",
            "combine_started",
            "report_ready",
        )
    }


async def _repeat(api: httpx.AsyncClient, servers: Any) -> Figures:
    tag = secrets.token_hex(4)
    question, sources = _question(tag), servers.sources(tag)
    before = servers.models.stats.requests
    first = await run_one(api, question, sources)
    middle = servers.models.stats.requests
    pages_before = len(servers.pages.requests)
    second = await run_one(api, question, sources)
    after = servers.models.stats.requests
    page_requests = servers.pages.requests[pages_before:]
    conditional = sum(1 for r in page_requests if r.conditional)
    states: dict[str, int] = {}
    view = (await api.get(f"/jobs/{second.job_id}")).json()
    for s in view.get("sources", []):
        states[s["state"]] = states.get(s["state"], 0) + 1
    first_s, second_s = first.duration_s, second.duration_s
    return {
        "first_s": first_s,
        "repeat_s": second_s,
        "speedup": (first_s / second_s) if first_s and second_s else None,
        "model_calls_first": middle - before,
        "model_calls_repeat": after - middle,
        "page_requests_repeat": len(page_requests),
        "page_requests_repeat_conditional": conditional,
        "repeat_source_states": states,
        "repeat_stages_s": _stages(second),
    }


async def emulator_calls(stack: LocalStack, since: float, until: float) -> Figures:
    """The S3 and SQS calls moto's server answered between two `time.time()`s: at the
    busiest second, and a second on average (None when moto runs on a thread of this
    process, which does not count them)."""
    from brief_local.motoserver import COUNTS_PATH

    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        answer = await http.get(f"{stack.endpoint}{COUNTS_PATH}")
    if answer.status_code != 200 or "by_second" not in answer.text:
        return {"peak_per_s": None, "mean_per_s": None}
    by_second = {int(k): n for k, n in answer.json()["by_second"].items()}
    seconds = [n for at, n in by_second.items() if since <= at < until]
    return {
        "peak_per_s": max(seconds, default=0),
        "mean_per_s": sum(seconds) / max(until - since, 1e-9),
    }


async def scale(n_jobs: int) -> Figures:
    """Scenario 2: N jobs of 5 sources at once vs one job, with short latencies; loop stalls."""
    with serving(SHORT) as servers:
        # Each function container in a process of its own, as in Lambda: on threads they
        # share this process's GIL with the loop watched here, which then mostly waits.
        options = servers.stack_options(function_processes=True)
        async with warm_stack(servers, options) as (stack, api):
            singles: list[float] = []
            async with watching() as single_watch:
                for _ in range(2):
                    tag = secrets.token_hex(4)
                    job = await run_one(api, _question(tag), servers.sources(tag))
                    if job.duration_s is not None:
                        singles.append(job.duration_s)
            requests_before = servers.models.stats.requests
            async with watching() as watch:
                started, cpu_started = time.time(), time.process_time()
                tree_before = tree_cpu_seconds(os.getpid())
                tags = [secrets.token_hex(4) for _ in range(n_jobs)]
                jobs = list(
                    await asyncio.gather(
                        *(submit(api, _question(t), servers.sources(t)) for t in tags)
                    )
                )
                submitted_s = time.time() - started
                await wait(api, jobs, timeout_s=300, every_s=5.0)  # 100 jobs: each poll is load
                busy_s, wall_s = time.process_time() - cpu_started, time.time() - started
                cpu = cpu_by_role(tree_before, tree_cpu_seconds(os.getpid()))
            calls = await emulator_calls(stack, started, started + wall_s)
            stats = servers.models.stats
            mappings = {m._pool.spec.logical_id: m.invocations for m in stack.mappings}
    done = [j for j in jobs if j.duration_s is not None]
    ends = [j.submitted_at + (j.duration_s or 0) for j in done]
    total_s = (max(ends) - started) if ends else None
    single_s = _median(singles)
    durations = sorted(j.duration_s for j in done if j.duration_s is not None)
    return {
        "latencies": vars(SHORT),
        "jobs": n_jobs,
        "completed": len(done),
        "single_job_s": single_s,
        "single_job_runs_s": singles,
        "all_jobs_s": total_s,
        "all_over_single": (total_s / single_s) if total_s else None,
        "submit_all_s": submitted_s,
        "per_job_median_s": _median(durations),
        "per_job_p95_s": durations[int(0.95 * (len(durations) - 1))] if durations else None,
        "process_cpu_s": busy_s,
        "process_cpu_per_wall": busy_s / wall_s,
        # Where the machine's CPU went while the jobs ran: the function containers (Brief),
        # moto (the emulator) and the stack's own process (API, pollers, page and model servers).
        "cpu_s": cpu,
        "cpu_per_job_s": {k: v / n_jobs for k, v in cpu.items()},
        "cores_busy": sum(cpu.values()) / wall_s,
        "emulator_calls": calls,
        "max_loop_gap_ms": watch.max_gap_ms,
        "max_loop_stall_ms": watch.stall_ms,
        "single_job_max_loop_stall_ms": single_watch.stall_ms,
        "model_requests": stats.requests - requests_before,
        "model_max_in_flight": stats.max_in_flight,
        "invocations": mappings,
    }


async def storm(n_jobs: int) -> Figures:
    """Scenario 5: 70% of model calls answered 429 with Retry-After: 1."""
    faults = Faults(rate_limit=0.7, retry_after_s=1.0, seed=6)
    with serving(SHORT, faults) as servers:
        # AWS's behaviour for a failed record (hidden for the visibility timeout unless the
        # function releases it sooner), not the local stack's one-second shortcut; and as many
        # summarize batches at once as Lambda would run for 10 jobs' 50 messages (its mapping
        # allows 20): with the local stack's usual 4, the last messages waited for a whole
        # batch, whose slowest record is a long run of 429s, to end.
        options = servers.stack_options(retry_after_s=None, max_pollers=8)
        async with (
            LocalStack(options) as stack,
            httpx.AsyncClient(base_url=stack.api_url, timeout=60) as api,
        ):
            started = time.time()
            tags = [secrets.token_hex(4) for _ in range(n_jobs)]
            jobs = list(
                await asyncio.gather(*(submit(api, _question(t), servers.sources(t)) for t in tags))
            )
            await wait(api, jobs, timeout_s=150, every_s=2.0)
            redelivered = sum(m.failed_records for m in stack.mappings)
            stats = servers.models.stats
        peers = {name: await _storm_peer(servers, n_jobs, retries) for name, retries in PEERS}
    done = [j for j in jobs if j.duration_s is not None]
    ends = [j.submitted_at + (j.duration_s or 0) for j in done]
    return {
        "latencies": vars(SHORT),
        "rate_limited_share": faults.rate_limit,
        "retry_after_s": faults.retry_after_s,
        "jobs": n_jobs,
        "completed": len(done),
        "completed_pct": 100.0 * len(done) / n_jobs,
        "states": {s: sum(1 for j in jobs if j.state == s) for s in {j.state for j in jobs}},
        "all_jobs_s": (max(ends) - started) if ends else None,
        "per_job_median_s": _median([j.duration_s for j in done if j.duration_s is not None]),
        "records_returned_to_sqs": redelivered,
        "model_requests": stats.requests,
        "model_429s": stats.statuses.get(429, 0),
        "model_completed": stats.completed,
        "peers": peers,
    }


# In-process peers on the same storm: the OpenAI SDK's default (two retries, honouring
# Retry-After), and the same with patience enough never to give up.
PEERS = (("sdk_default_2_retries", 2), ("patient_50_retries", 50))


async def _storm_peer(servers: Any, n_jobs: int, retries: int) -> Figures:
    """The seed's gather pipeline, `n_jobs` at once in one process, on the storm."""
    started = time.perf_counter()
    times = await asyncio.gather(
        *(
            baselines.gathered_retrying(
                _question(tag), servers.sources(tag), servers.models.url, retries=retries
            )
            for tag in (secrets.token_hex(4) for _ in range(n_jobs))
        )
    )
    done = [t for t in times if t is not None]
    return {
        "completed_pct": 100.0 * len(done) / n_jobs,
        "all_jobs_s": (time.perf_counter() - started) if len(done) == n_jobs else None,
        "per_job_median_s": _median(done) if done else None,
    }


async def warm_summarize(messages: int) -> Figures:
    """Scenario 3b: the summarize handler, warm, in-process against moto with the extractive
    model: ms per message (one record per invocation, as a trickle of messages arrives)."""
    with serving(Latencies(0.0, 0.0, 0.0)) as servers:
        options = StackOptions(environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"}, moto_process=True)
        async with (
            LocalStack(options) as stack,
            httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api,
        ):
            tag = secrets.token_hex(4)
            template = await run_one(api, _question(tag), servers.sources(tag))
            jobs = await _clone_sources(stack, template.job_id, -(-messages // 5))
            spec = stack.template.functions["SummarizeFunction"]
            container = await asyncio.to_thread(ThreadContainer, spec, stack.function_environment)
            try:
                from brief.messages import SummarizeTask

                tasks = [
                    SummarizeTask(job_id=j, index=i, expected=5) for j in jobs for i in range(5)
                ]
                timings: list[float] = []
                failures = 0
                for n, task in enumerate(tasks[: messages + 2]):
                    event = {"Records": [_record(task.model_dump_json(), n)]}
                    started = time.perf_counter()
                    answer = await container.invoke(event)
                    elapsed = (time.perf_counter() - started) * 1000
                    failures += len((answer or {}).get("batchItemFailures", []))
                    timings.append(elapsed)
            finally:
                await asyncio.to_thread(container.close)
            extractive_ms = await _extractive_alone(stack, template.job_id)
            moto = await _moto_round_trips(stack, template.job_id)
    warm = timings[2:]  # the first builds the clients: that is the cold start's share
    return {
        "messages": len(warm),
        "first_invocation_ms": timings[0],
        "median_ms": _median(warm),
        "p95_ms": sorted(warm)[int(0.95 * (len(warm) - 1))],
        "failed_records": failures,
        "extractive_summarize_alone_ms": extractive_ms,
        "moto": moto,
    }


def _record(body: str, n: int) -> dict[str, Any]:
    return {
        "messageId": f"bench-{n}",
        "receiptHandle": f"bench-{n}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
        "awsRegion": "us-east-1",
    }


async def _clone_sources(stack: LocalStack, job_id: str, count: int) -> list[str]:
    """`count` new jobs whose request (with a question of its own), retrieval and five stored
    sources are copies of `job_id`'s: summarize work that no cache has seen, whose combine
    then runs as it would."""
    import aioboto3

    new_ids = [secrets.token_hex(16) for _ in range(count)]
    async with aioboto3.Session().client(
        "s3", region_name="us-east-1", endpoint_url=stack.endpoint
    ) as s3:
        prefix = f"jobs/{job_id}/"
        names = ["request.json", "retrieval.json"] + [f"sources/{i}.json" for i in range(5)]
        keys = [prefix + name for name in names]
        bodies = {}
        for key in keys:
            obj = await s3.get_object(Bucket=stack.bucket, Key=key)
            bodies[key.removeprefix(prefix)] = (await obj["Body"].read()).decode()
        for new in new_ids:
            for name, body in bodies.items():
                data = json.loads(body.replace(job_id, new))
                if name == "request.json":
                    data["request"]["question"] += f" ({new[:8]})"
                await s3.put_object(
                    Bucket=stack.bucket, Key=f"jobs/{new}/{name}", Body=json.dumps(data).encode()
                )
    return new_ids


async def _extractive_alone(stack: LocalStack, job_id: str) -> float:
    """The extractive summarizer's own CPU time on the same five sources (ms per source)."""
    import aioboto3

    from brief.extractive import ExtractiveSummarizer
    from brief.ports import SourceText

    async with aioboto3.Session().client(
        "s3", region_name="us-east-1", endpoint_url=stack.endpoint
    ) as s3:
        texts = []
        for i in range(5):
            obj = await s3.get_object(Bucket=stack.bucket, Key=f"jobs/{job_id}/sources/{i}.json")
            texts.append(json.loads(await obj["Body"].read())["text"])
    summarizer = ExtractiveSummarizer()
    started = time.perf_counter()
    rounds = 10
    for _ in range(rounds):
        for n, text in enumerate(texts, start=1):
            await summarizer.summarize(QUESTION, SourceText(n=n, title=None, url="u", text=text))
    return (time.perf_counter() - started) * 1000 / (rounds * len(texts))


async def _moto_round_trips(stack: LocalStack, job_id: str) -> Figures:
    """What one S3 call costs on the local stack's moto, alone and 16 at a time: the floor
    under every stage's per-message time here."""
    import aioboto3
    from aiobotocore.config import AioConfig

    key = f"jobs/{job_id}/request.json"
    async with aioboto3.Session().client(
        "s3",
        region_name="us-east-1",
        endpoint_url=stack.endpoint,
        config=AioConfig(max_pool_connections=16),
    ) as s3:

        async def get() -> None:
            obj = await s3.get_object(Bucket=stack.bucket, Key=key)
            await obj["Body"].read()

        for _ in range(5):
            await get()
        started = time.perf_counter()
        for _ in range(100):
            await get()
        alone_ms = (time.perf_counter() - started) * 10

        async def worker() -> None:
            for _ in range(25):
                await get()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(16)))
        per_s = 400 / (time.perf_counter() - started)
    return {"get_object_ms": alone_ms, "get_object_per_s_16_at_once": per_s}


async def batch(n_jobs: int, window_s: float) -> Figures:
    """Scenario 6: a batch of `n_jobs` seed-like jobs through `POST /batches`: how long the
    answer takes, how long its status takes (at once and under load), and the jobs finished
    per minute over `window_s` (or until all end)."""
    with serving(SHORT) as servers:
        options = servers.stack_options(function_processes=True)
        async with warm_stack(servers, options) as (stack, api):
            tags = [secrets.token_hex(4) for _ in range(n_jobs)]
            body = {
                "jobs": [{"question": _question(t), "sources": servers.sources(t)} for t in tags]
            }
            started, started_at = time.perf_counter(), time.time()
            accepted = (await api.post("/batches", json=body)).raise_for_status().json()
            submit_s = time.perf_counter() - started
            path = f"/batches/{accepted['batch_id']}"
            status_s: list[float] = []
            ended_at: list[tuple[float, int]] = []
            while True:
                asked = time.perf_counter()
                view = (await api.get(path, params={"limit": 1})).raise_for_status().json()
                status_s.append(time.perf_counter() - asked)
                counts = view["counts"]
                ended = sum(counts.get(s, 0) for s in ("done", "failed", "cancelled"))
                ended_at.append((time.perf_counter() - started, ended))
                if ended == n_jobs or time.perf_counter() - started > window_s:
                    break
                await asyncio.sleep(2.0)
            calls = await emulator_calls(stack, started_at, time.time())
    elapsed, ended = ended_at[-1]
    # Jobs per minute once they flow: from the first job's end to the last observation.
    first = next((t for t, e in ended_at if e > 0), None)
    per_minute = (ended - 1) / (elapsed - first) * 60 if first and elapsed > first else None
    return {
        "jobs": n_jobs,
        "submit_s": submit_s,
        "status_median_s": _median(status_s),
        "status_max_s": max(status_s),
        "status_calls": len(status_s),
        "ended": ended,
        "done": counts.get("done", 0),
        "watched_s": elapsed,
        "jobs_per_minute": per_minute,
        "emulator_calls": calls,
    }


async def followed(n_jobs: int) -> Figures:
    """Scenario 8: rounds of `n_jobs` seed jobs at once, nobody watching, or each followed by
    its event stream (as the web page and `brief research` follow a job): how much longer the
    watched ones take (mean of two rounds of each)."""
    with serving(SEED) as servers:
        async with warm_stack(servers, servers.stack_options(), connections=64) as (_, api):
            # Unwatched, watched, watched, unwatched: each kind meets as full a bucket and as
            # warm a stack as the other.
            rounds = [
                await _round(api, servers, n_jobs, follow=follow)
                for follow in (False, True, True, False)
            ]
    unwatched, watched = rounds[0] + rounds[3], rounds[1] + rounds[2]
    return {
        "jobs": n_jobs,
        "latencies": vars(SEED),
        "rounds_s": rounds,
        "unwatched_s": unwatched / 2,
        "watched_s": watched / 2,
        "watched_over_unwatched": watched / unwatched if unwatched and watched else None,
    }


async def _round(api: httpx.AsyncClient, servers: Any, n_jobs: int, *, follow: bool) -> float:
    """Seconds from the first submission to the last report of `n_jobs` jobs at once."""
    started = time.time()
    tags = [secrets.token_hex(4) for _ in range(n_jobs)]
    jobs = list(
        await asyncio.gather(*(submit(api, _question(t), servers.sources(t)) for t in tags))
    )
    if follow:
        await asyncio.gather(*(_follow(api, j.job_id) for j in jobs))
    await wait(api, jobs, timeout_s=300, every_s=5.0)
    ends = [j.submitted_at + j.duration_s for j in jobs if j.duration_s is not None]
    return max(ends) - started if len(ends) == n_jobs else float("nan")


async def _follow(api: httpx.AsyncClient, job_id: str) -> None:
    """Read the job's event stream to its end."""
    headers = {"Accept": "text/event-stream"}
    async with api.stream("GET", f"/jobs/{job_id}/events", headers=headers) as stream:
        async for _ in stream.aiter_lines():
            pass
