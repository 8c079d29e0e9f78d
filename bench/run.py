"""`make bench`: every measurement in one run; a table, results.json, timeline.png.

    .venv/bin/python -m bench.run            # BENCH_JOBS=20 BENCH_RUNS=3 to change the sizes

Environment: BENCH_RUNS (seed-scenario runs, default 3), BENCH_JOBS (scale jobs, default
100), BENCH_STORM_JOBS (jobs in the 429 storm, default 10), BENCH_COLD_RUNS (fresh processes
per function and for the `brief` command, default 5), BENCH_WARM_MESSAGES (warm summarize
messages, default 40), BENCH_BATCH_JOBS (jobs of the batch, default 1,000),
BENCH_BATCH_WINDOW_S (how long the batch is watched, default 180), BENCH_FOLLOWED_JOBS (jobs
followed live against as many unwatched, default 20), BENCH_MODEL_PRICE (USD
per million input and output tokens for the cost table, default 0.15,0.60: gpt-4o-mini's list
price, as an example), BENCH_OUT (default bench-results). Scenario 9 (deep research) runs alone as
`python -m bench.deep`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import coldstart, cost, deep, scenarios, timeline, trace
from bench.jobs import Job

Figures = dict[str, Any]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _per_s(calls: Figures) -> str:
    """The emulator's calls a second, at the busiest second and on average."""
    if calls.get("peak_per_s") is None:
        return "calls not counted (moto on a thread)"
    peak, mean = calls["peak_per_s"], calls["mean_per_s"]
    return f"{peak} calls at the busiest second, {mean:.0f} a second on average"


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def targets(r: Figures) -> list[tuple[str, str, str]]:
    """(target, measured, met?) for every target of the issue."""
    seed, scale, cold, warm, cache, storm = (
        r["seed"], r["scale"], r["cold_start"], r["warm_summarize"], r["cache"], r["storm"],
    )  # fmt: skip
    rows = [
        ("Brief/gather <= 1.05x (seed job)", f"{seed['brief_over_gather']:.2f}x",
         _check(seed["brief_over_gather"] <= 1.05)),
        ("sequential/Brief >= 3.5x", f"{seed['sequential_over_brief']:.2f}x",
         _check(seed["sequential_over_brief"] >= 3.5)),
    ]  # fmt: skip
    ratio = scale["all_over_single"]
    rows.append(
        (f"{scale['jobs']} jobs <= 1.25x one job", "—" if ratio is None else f"{ratio:.2f}x",
         _check(None if ratio is None else ratio <= 1.25 and scale["completed"] == scale["jobs"]))
    )  # fmt: skip
    rows.append(
        ("no loop stall > 50 ms", f"{scale['max_loop_stall_ms']:.0f} ms",
         _check(scale["max_loop_stall_ms"] <= 50))
    )  # fmt: skip
    for name, figures in cold.items():
        limit = 400 if name == "api" else 250
        rows.append(
            (f"cold start {name} < {limit} ms", f"{figures['median_ms']:.0f} ms",
             _check(figures["median_ms"] < limit))
        )  # fmt: skip
    cli = r["cli_start"]
    rows.append(
        ("brief status JOB < 300 ms", f"{cli['median_ms']:.0f} ms",
         _check(cli["median_ms"] < 300))
    )  # fmt: skip
    rows.append(
        ("warm summarize < 20 ms/message", f"{warm['median_ms']:.1f} ms",
         _check(warm["median_ms"] < 20))
    )  # fmt: skip
    speedup = cache["speedup"]
    rows.append(
        ("cached repeat >= 5x, no model call",
         f"{speedup:.2f}x, {cache['model_calls_repeat']} calls" if speedup else "—",
         _check(speedup is not None and speedup >= 5 and cache["model_calls_repeat"] == 0))
    )  # fmt: skip
    rows.append(
        ("429 storm: 100% complete", f"{storm['completed_pct']:.0f}%",
         _check(storm["completed_pct"] == 100.0))
    )  # fmt: skip
    patient = storm["peers"]["patient_50_retries"]["all_jobs_s"]
    rows.append(
        ("429 storm: faster than the best peer",
         f"{_fmt(storm['all_jobs_s'])} vs {_fmt(patient)}",
         _check(None not in (storm["all_jobs_s"], patient)
                and storm["all_jobs_s"] < patient))
    )  # fmt: skip
    calls = r["calls"]["total"]
    rows.append(("seed job <= 45 S3+SQS calls", f"{calls}", _check(calls <= 45)))
    followed = r["followed"]["watched_over_unwatched"]
    rows.append(
        (f"{r['followed']['jobs']} jobs followed <= 1.10x unwatched",
         "—" if followed is None else f"{followed:.2f}x",
         _check(followed is not None and followed <= 1.10))
    )  # fmt: skip
    batch = r["batch"]
    rows.append(
        (f"batch of {batch['jobs']} submitted < 2 s", f"{batch['submit_s']:.2f} s",
         _check(batch["submit_s"] < 2))
    )  # fmt: skip
    rows.append(
        ("batch status < 1 s (slowest poll)", f"{batch['status_max_s'] * 1000:.0f} ms",
         _check(batch["status_max_s"] < 1))
    )  # fmt: skip
    tree = r.get("deep")
    if tree is not None:
        over, wide = tree["brief_over_gathered"], tree["breadth3_over_breadth1"]
        rows.append(
            ("deep tree <= 1.10x gathered walk", "—" if over is None else f"{over:.2f}x",
             _check(over is not None and over <= 1.10))
        )  # fmt: skip
        rows.append(
            ("deep tree breadth 3/1 <= 1.10x", "—" if wide is None else f"{wide:.2f}x",
             _check(wide is not None and wide <= 1.10))
        )  # fmt: skip
    return rows


def table(r: Figures) -> str:
    """The human-readable summary."""
    seed, scale, warm, cache, storm, batch = (
        r["seed"], r["scale"], r["warm_summarize"], r["cache"], r["storm"], r["batch"],
    )  # fmt: skip
    lines = [
        f"Machine: {r['machine']['nproc']} cores, Python {r['machine']['python']}, "
        f"{r['machine']['platform']}",
        "",
        f"1. Seed job (5 sources; fetch {seed['latencies']['fetch_s']:g} s, summarize "
        f"{seed['latencies']['summarize_s']:g} s, combine {seed['latencies']['combine_s']:g} s; "
        f"critical path {seed['critical_path_s']:g} s), median of {seed['runs']}:",
        f"   sequential          {_fmt(seed['median_sequential_s'])}",
        f"   asyncio.gather      {_fmt(seed['median_gather_s'])}",
        f"   Brief (local stack) {_fmt(seed['median_brief_s'])}"
        f"   (first job, cold: {_fmt(seed['brief_first_job_cold_s'])})",
        f"   Brief/gather {seed['brief_over_gather']:.2f}x, "
        f"sequential/Brief {seed['sequential_over_brief']:.2f}x",
        "   one Brief job's stages (s after POST): "
        + ", ".join(f"{k} {_fmt(v, '')}" for k, v in seed["brief_stages_s"].items()),
        "",
        f"2. Scale ({scale['jobs']} jobs x 5 sources at once; fetch "
        f"{scale['latencies']['fetch_s']:g} s, summarize {scale['latencies']['summarize_s']:g} s,"
        f" combine {scale['latencies']['combine_s']:g} s):",
        f"   one job {_fmt(scale['single_job_s'])}; all {scale['completed']}/{scale['jobs']} "
        f"done in {_fmt(scale['all_jobs_s'])}"
        + (f" ({scale['all_over_single']:.2f}x one job)" if scale["all_over_single"] else ""),
        f"   per job: median {_fmt(scale['per_job_median_s'])}, p95 "
        f"{_fmt(scale['per_job_p95_s'])}; submitting all took {_fmt(scale['submit_all_s'])}",
        "   CPU per job meanwhile: function containers (each a process) "
        f"{scale['cpu_per_job_s']['function']:.2f} s, moto "
        f"{scale['cpu_per_job_s']['moto']:.2f} s, the stack's process (API, pollers, page and "
        f"model servers) {scale['cpu_per_job_s']['stack']:.2f} s; "
        f"{scale['cores_busy']:.2f} of {r['machine']['nproc']} cores busy",
        f"   moto answered {_per_s(scale.get('emulator_calls', {}))}",
        f"   largest gap of a 10 ms ticker on the stack's loop: "
        f"{scale['max_loop_gap_ms']:.0f} ms (one job alone: "
        f"{scale['single_job_max_loop_stall_ms'] + 10:.0f} ms)",
        "",
        "3. Cold start (fresh process, import of functions/<name>/app.py), median ms:",
        "   " + ", ".join(f"{k} {v['median_ms']:.0f}" for k, v in r["cold_start"].items()),
        f"   `brief status JOB` starts in {r['cli_start']['median_ms']:.0f} ms median "
        f"(a bare `python -c pass`: {r['cli_start']['python_ms']:.0f} ms)",
        f"   Warm summarize vs moto, extractive model: {warm['median_ms']:.1f} ms/message "
        f"median, p95 {warm['p95_ms']:.1f} ms, over {warm['messages']} messages (first "
        f"invocation {warm['first_invocation_ms']:.0f} ms; the extractive summary alone "
        f"{warm['extractive_summarize_alone_ms']:.1f} ms)",
        f"   moto on loopback: one S3 GetObject {warm['moto']['get_object_ms']:.1f} ms alone; "
        f"{warm['moto']['get_object_per_s_16_at_once']:.0f}/s with 16 at once",
        "",
        f"4. Repeated job: first {_fmt(cache['first_s'])} ({cache['model_calls_first']} model "
        f"calls), repeat {_fmt(cache['repeat_s'])} ({cache['model_calls_repeat']} model calls, "
        f"{cache['page_requests_repeat']} page requests, "
        f"{cache['page_requests_repeat_conditional']} conditional)"
        + (f": {cache['speedup']:.2f}x faster" if cache["speedup"] else ""),
        "",
        f"5. 429 storm ({storm['rate_limited_share']:.0%} of model calls 429, Retry-After "
        f"{storm['retry_after_s']:g} s; {storm['jobs']} jobs): {storm['completed_pct']:.0f}% "
        f"complete in {_fmt(storm['all_jobs_s'])}; {storm['model_429s']} 429s of "
        f"{storm['model_requests']} model calls; {storm['records_returned_to_sqs']} records "
        "handed back to SQS",
        "   in-process gather peers on the same storm, all jobs at once: "
        + "; ".join(
            f"{name.replace('_', ' ')}: {p['completed_pct']:.0f}% complete"
            + (f" in {_fmt(p['all_jobs_s'])}" if p["all_jobs_s"] else "")
            for name, p in storm["peers"].items()
        ),
        f"6. A batch of {batch['jobs']} jobs through POST /batches: answered in "
        f"{batch['submit_s']:.2f} s; its status in {batch['status_median_s'] * 1000:.0f} ms "
        f"median, {batch['status_max_s'] * 1000:.0f} ms at most over "
        f"{batch['status_calls']} polls while it ran; {batch['ended']} jobs ended in "
        f"{batch['watched_s']:.0f} s"
        + (
            f" ({batch['jobs_per_minute']:.0f} jobs/minute once they flowed)"
            if batch["jobs_per_minute"]
            else ""
        ),
        f"   moto answered {_per_s(batch.get('emulator_calls', {}))}",
        f"8. {r['followed']['jobs']} seed jobs at once: {_fmt(r['followed']['unwatched_s'])} "
        f"unwatched, {_fmt(r['followed']['watched_s'])} each followed by its event stream "
        "(mean of two rounds each)",
        f"7. S3 and SQS calls of one warm seed job: {r['calls']['total']} ("
        + ", ".join(f"{k} {v}" for k, v in r["calls"]["by_stage"].items())
        + f"; {r['calls']['cancel_polls']} of them the cancel watch's polls)",
        "",
        deep.describe(r["deep"]),
        "",
        *cost.describe(r["cost"]),
        "",
        "Targets:",
    ]
    rows = targets(r)
    width = max(len(t) for t, _, _ in rows)
    lines += [f"   {t:<{width}}  {m:>18}  {ok}" for t, m, ok in rows]
    return "\n".join(lines) + "\n"


async def measure() -> tuple[Figures, Job]:
    """Run every scenario; the figures and the seed job to draw."""
    runs = _env_int("BENCH_RUNS", 3)
    jobs = _env_int("BENCH_JOBS", 100)
    started = time.perf_counter()
    results: Figures = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
    }

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {name}", file=sys.stderr, flush=True)

    step("3a. cold starts")
    results["cold_start"] = await coldstart.cold_starts(_env_int("BENCH_COLD_RUNS", 5))
    step("3b. the brief command's start")
    results["cli_start"] = await coldstart.cli_start(_env_int("BENCH_COLD_RUNS", 5))
    step("3c. warm summarize")
    messages = _env_int("BENCH_WARM_MESSAGES", 40)
    results["warm_summarize"] = await scenarios.warm_summarize(messages)
    step(f"1+4. seed job x{runs}: sequential, gather, Brief; then a repeated job")
    results["seed"], results["cache"], job = await scenarios.seed_and_cache(runs)
    step(f"2. scale: {jobs} jobs")
    results["scale"] = await scenarios.scale(jobs)
    step("5. 429 storm")
    results["storm"] = await scenarios.storm(_env_int("BENCH_STORM_JOBS", 10))
    step("1b. S3 and SQS calls of one seed job, and what 1,000 cost in AWS")
    results["calls"] = await trace.count_calls()
    price = os.environ.get("BENCH_MODEL_PRICE", "0.15,0.60").split(",")
    results["cost"] = cost.from_calls(results["calls"], 1_000, (float(price[0]), float(price[1])))
    followed_jobs = _env_int("BENCH_FOLLOWED_JOBS", 20)
    step(f"8. {followed_jobs} jobs, unwatched and then followed live")
    results["followed"] = await scenarios.followed(followed_jobs)
    batch_jobs = _env_int("BENCH_BATCH_JOBS", 1_000)
    step(f"6. a batch of {batch_jobs} jobs")
    window = float(_env_int("BENCH_BATCH_WINDOW_S", 180))
    results["batch"] = await scenarios.batch(batch_jobs, window)
    step("9. deep research: a depth-2 tree, and the same tree walked in-process")
    results["deep"] = await deep.deep_tree()
    results["targets"] = [{"target": t, "measured": m, "status": s} for t, m, s in targets(results)]
    return results, job


def main() -> int:
    """Measure, then print the table and write results.json and timeline.png."""
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("brief").setLevel(logging.ERROR)  # "no price for model" per call
    out = Path(os.environ.get("BENCH_OUT", "bench-results"))
    started = time.perf_counter()
    results, job = asyncio.run(measure())
    results["bench_s"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    timeline.draw(
        job,
        out / "timeline.png",
        f"One Brief job on the local stack: {job.duration_s or 0:.2f} s "
        f"(critical path {results['seed']['critical_path_s']:g} s)",
    )
    print(table(results))
    print(f"Wrote {out / 'results.json'} and {out / 'timeline.png'} in {results['bench_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
