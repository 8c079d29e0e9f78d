"""Chaos on the local stack: jobs through the API under seeded faults keep every invariant."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import httpx
import pytest

from brief_testing.chaos import ChaosOptions, run_chaos
from brief_testing.faults import FaultPlan
from brief_testing.pages import PageFaults, PageServer


def test_twenty_jobs_under_faults_end_with_one_report_each_and_no_lost_summary() -> None:
    # Higher rates than `make chaos` so that twenty jobs meet every kind of fault; a short
    # visibility timeout brings a killed worker's messages back within the test.
    plan = replace(
        FaultPlan.default(seed=7),
        crash_after_write=0.2,
        duplicate_delivery=0.2,
        s3_outage=0.01,
        sqs_error=0.1,
        sqs_refused=0.05,
        model_429=0.15,
        page_reset=0.05,
        page_timeout=0.05,
        visibility_timeout_s=4,
    )
    ledger = asyncio.run(run_chaos(ChaosOptions(jobs=20, sources=3, plan=plan, deadline_s=240)))

    assert ledger.breaches() == [], ledger.render()
    assert ledger.submitted == 20
    assert ledger.batch_size == 4  # a fifth as one batch, its status checked against its jobs
    assert ledger.batch_mismatches == []
    assert {a.state for a in ledger.audits} <= {"done", "failed"}
    done = ledger.by_state("done")
    assert done, ledger.render()
    assert all(a.report_writes == 1 for a in done)
    assert all(ledger.combine_sends[a.job_id] >= 1 for a in done)
    assert ledger.dlq_left == {
        "IntakeDeadLetterQueue": 0,
        "SummarizeDeadLetterQueue": 0,
        "CombineDeadLetterQueue": 0,
    }
    kinds = " ".join(ledger.faults)
    for kind in ("worker killed before ack", "duplicate delivery", "s3 503", "model 429"):
        assert kind in kinds, ledger.render()


def test_page_faults_reset_or_stall_a_seeded_share_of_requests() -> None:
    faults = PageFaults(reset=0.3, timeout=0.3, stall_s=1.0, seed=3)
    paths = [f"/01-when-a-colony-splits.html?n={n}" for n in range(40)]
    first: dict[str | None, str] = {}
    for path in paths:  # a pure function of the seed and the request: known in advance
        first.setdefault(faults.draw(path, 0), path)
    server = PageServer(faults=faults).start()
    try:
        with httpx.Client(base_url=server.url, timeout=0.5) as client:
            assert client.get(first[None]).status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                client.get(first["timeout"])
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.get(first["reset"])
    finally:
        server.stop()
    assert server.injected == Counter({"reset": 1, "timeout": 1})
