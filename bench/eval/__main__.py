"""`python -m bench.eval` (`make eval`): every bundled case through the local stack, scored.

Runs the set once per configuration, each a fresh local stack (moto, the functions from
template.yaml, pages served from this repository on loopback):

- `offline`: the built-in default (the extractive summarizer), no key;
- `fake-model`: both stages on the fake OpenAI-compatible model server, which also invents a
  citation in half its answers: the plumbing check that citations survive summarize → combine
  and that invented ones are dropped (its recall measures the fake, not a model);
- `model`: the model configured in the environment (`BRIEF_SUMMARIZE_MODEL`,
  `BRIEF_COMBINE_MODEL`, `BRIEF_MODEL_PRICES`, as `docs/models.md` describes), only when one is.

Prints a table per configuration and writes `bench-results/eval.json` (`EVAL_OUT` to change).
`EVAL_CONFIGS=offline` runs a subset; `--direct` scores the offline summarizer in-process
(no stack), for tuning it quickly; with `--losses`, it also says where each missed nugget
was lost (`bench.eval.losses`). `--cases DIR` runs another set of cases instead, such as the
held-out set in `bench/eval/heldout` (questions the summarizer was not tuned on).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.eval import direct, losses
from bench.eval.cases import ROOT, Case, load_all
from bench.eval.metrics import Score, score
from bench.jobs import Job, submit, wait
from brief_local.stack import StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer, Faults
from brief_testing.pages import PageServer

TIMEOUT_S = 300.0
MODEL_SETTINGS = ("BRIEF_SUMMARIZE_MODEL", "BRIEF_COMBINE_MODEL", "BRIEF_MODEL_PRICES")
TARGETS = "targets (offline): recall >= 0.70, 0 unsupported, 0 dangling, redundancy <= 5%"


@dataclass
class Run:
    """One configuration's reports, scored."""

    config: str
    scores: list[Score]
    seconds: float
    failed: list[str]
    note: str = ""

    def totals(self) -> dict[str, Any]:
        n = len(self.scores) or 1
        findings = sum(s.findings for s in self.scores) or 1
        return {
            "recall": round(sum(s.recall for s in self.scores) / n, 3),
            "unsupported": sum(len(s.unsupported) for s in self.scores),
            "invented": sum(len(s.invented) for s in self.scores),
            "redundancy": round(sum(len(s.redundant) for s in self.scores) / findings, 3),
            "restatement": round(sum(len(s.restated) for s in self.scores) / findings, 3),
            "lead": f"{sum(s.lead_stating for s in self.scores)}/"
            f"{sum(s.lead_sentences for s in self.scores)}",
            "dangling": sum(len(s.dangling) for s in self.scores),
            "words": round(sum(s.words for s in self.scores) / n),
        }


def configs() -> dict[str, dict[str, str]]:
    """The configurations to run, by name, each as the stack's extra environment."""
    wanted = [c for c in os.environ.get("EVAL_CONFIGS", "").split(",") if c]
    found: dict[str, dict[str, str]] = {"offline": {}, "fake-model": {}}
    if any(os.environ.get(k) for k in MODEL_SETTINGS):
        found["model"] = {k: os.environ[k] for k in MODEL_SETTINGS if os.environ.get(k)}
    return {k: v for k, v in found.items() if not wanted or k in wanted}


@contextmanager
def fake_models() -> Iterator[tuple[dict[str, str], FakeModelServer]]:
    """The fake model server (no delay; half its answers cite a source it was not given),
    and the settings that point both stages at it."""
    server = FakeModelServer(faults=Faults(invent_citation=0.5)).start()
    try:
        stage = {"provider": "openai", "base_url": f"{server.url}/v1", "api_key": "eval"}
        yield (
            {
                "BRIEF_SUMMARIZE_MODEL": json.dumps({**stage, "model": "eval-map"}),
                "BRIEF_COMBINE_MODEL": json.dumps({**stage, "model": "eval-reduce"}),
            },
            server,
        )
    finally:
        server.stop()


def source_urls(case: Case, pages: PageServer) -> list[str]:
    """The case's sources as the page server (rooted at the repository) serves them."""
    return [f"{pages.url}/{s.path.relative_to(ROOT).as_posix()}" for s in case.sources]


async def run_cases(
    api_url: str, pages: PageServer, cases: list[Case]
) -> tuple[list[Score], list[str]]:
    """Every case as one job at once; each report scored (a job without one is listed)."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        jobs: list[Job] = [await submit(api, c.question, source_urls(c, pages)) for c in cases]
        await wait(api, jobs, timeout_s=TIMEOUT_S)
        scores, failed = [], []
        for case, job in zip(cases, jobs, strict=True):
            answer = await api.get(f"/jobs/{job.job_id}/report")
            if answer.status_code != 200:
                failed.append(f"{case.slug}: {job.state} ({answer.status_code})")
                continue
            texts = {i + 1: s.text() for i, s in enumerate(case.sources)}
            scores.append(score(case, answer.json()["markdown"], texts))
        return scores, failed


def run(config: str, environment: Mapping[str, str], cases: list[Case]) -> Run:
    """One configuration on a fresh stack."""
    pages = PageServer(ROOT).start()
    started = time.perf_counter()
    try:
        env = {"BRIEF_ALLOWED_HOSTS": "127.0.0.1", **environment}
        with running_stack(StackOptions(environment=env, moto_process=True)) as stack:
            scores, failed = asyncio.run(run_cases(stack.api_url, pages, cases))
    finally:
        pages.stop()
    return Run(config, scores, time.perf_counter() - started, failed)


def table(result: Run) -> str:
    """The configuration's figures, a row a case and one overall."""
    head = f"{'case':34} {'recall':>9} " + " ".join(
        f"{h:>{w}}"
        for h, w in (
            ("unsup", 5),
            ("invent", 6),
            ("redund", 6),
            ("restate", 7),
            ("lead", 5),
            ("dangle", 6),
            ("words", 5),
        )
    )
    lines = [f"== {result.config} ({result.seconds:.0f} s)", head]
    for s in result.scores:
        found = f"{len(s.found)}/{s.nuggets}"
        lines.append(
            f"{s.case:34} {s.recall:4.2f} {found:>4} {len(s.unsupported):>5} {len(s.invented):>6}"
            f" {s.redundancy:>6.0%} {s.restatement:>7.0%} {s.lead_stating:>2}/{s.lead_sentences:<2}"
            f" {len(s.dangling):>6} {s.words:>5}"
        )
    t = result.totals()
    lines.append(
        f"{'overall':34} {t['recall']:4.2f}      {t['unsupported']:>5} {t['invented']:>6}"
        f" {t['redundancy']:>6.0%} {t['restatement']:>7.0%} {t['lead']:>5}"
        f" {t['dangling']:>6} {t['words']:>5}"
    )
    lines += [f"  no report: {f}" for f in result.failed]
    if result.note:
        lines.append(f"  {result.note}")
    return "\n".join(lines)


async def direct_scores(cases: list[Case]) -> list[Score]:
    """The offline summarizer's reports made in-process (`bench.eval.direct`)."""
    from brief.extractive import ExtractiveSummarizer

    scores = []
    for case in cases:
        markdown, texts = await direct.report(case, ExtractiveSummarizer())
        scores.append(score(case, markdown, texts))
    return scores


async def lost(cases: list[Case]) -> str:
    """Where the offline summarizer loses each nugget it misses (`bench.eval.losses`)."""
    from brief.extractive import ExtractiveSummarizer

    every: list[losses.Loss] = []
    lines = ["== where the offline report loses its missed nuggets"]
    for case in cases:
        found = await losses.losses(case, ExtractiveSummarizer())
        every += found
        lines += [f"{case.slug}"] + [f"  {loss.describe()}" for loss in found]
    return "\n".join([*lines, losses.summary_line(every)])


def main(argv: list[str]) -> int:
    folder = argv[argv.index("--cases") + 1] if "--cases" in argv else None
    cases = load_all(Path(folder).resolve()) if folder else load_all()
    if "--direct" in argv:
        started = time.perf_counter()
        results = [Run("offline, in-process", asyncio.run(direct_scores(cases)), 0.0, [])]
        results[0].seconds = time.perf_counter() - started
    else:
        results = []
        for name, environment in configs().items():
            if name == "fake-model":
                with fake_models() as (settings, server):
                    results.append(run(name, settings, cases))
                    results[-1].note = (
                        f"the fake invented {server.stats.invented} citations; "
                        f"the reports kept {results[-1].totals()['invented']}"
                    )
            else:
                results.append(run(name, environment, cases))
            print(table(results[-1]), flush=True)
    if "--direct" in argv:
        print(table(results[0]))
        if "--losses" in argv:
            print(asyncio.run(lost(cases)))
    print(TARGETS)
    out = Path(os.environ.get("EVAL_OUT", "bench-results")) / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                r.config: {
                    "totals": r.totals(),
                    "seconds": round(r.seconds, 1),
                    "failed": r.failed,
                    "note": r.note,
                    "cases": [s.as_json() for s in r.scores],
                }
                for r in results
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
