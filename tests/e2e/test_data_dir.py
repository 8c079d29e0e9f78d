"""`brief local --data-dir`: jobs and reports outlive the stack that made them."""

from __future__ import annotations

from pathlib import Path

import httpx

from brief_local.persist import BucketMirror
from brief_local.stack import StackOptions, running_stack
from brief_testing.pages import PageServer

from .conftest import wait_for
from .test_local_stack import QUESTION


def test_a_report_and_my_jobs_survive_a_restart(pages: PageServer, tmp_path: Path) -> None:
    data = tmp_path / "brief-data"
    options = StackOptions(environment={"BRIEF_ALLOWED_HOSTS": "127.0.0.1"}, data_dir=data)

    with running_stack(options) as first, httpx.Client(base_url=first.api_url) as api:
        created = api.post("/jobs", json={"question": QUESTION, "sources": pages.pages()[:2]})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        assert wait_for(api, job_id)["state"] == "done"
        report = api.get(f"/jobs/{job_id}/report").json()
    assert (data / "objects" / "jobs" / job_id / "report.json").is_file()

    # A write cut short by a crash leaves a `.partial` file: not an object to restore.
    (data / "objects" / "jobs" / job_id / "report.md.partial").write_text("half a rep")
    # A new stack: new moto, new bucket, the same directory.
    kept = [p for p in (data / "objects").rglob("*") if p.is_file()]
    with running_stack(StackOptions(data_dir=data)) as second:
        assert second.restored == len(kept) - 1  # all but the .partial
        with httpx.Client(base_url=second.api_url) as api:
            assert api.get(f"/jobs/{job_id}/report").json() == report
            assert api.get(f"/jobs/{job_id}").json()["state"] == "done"
            mine = api.get("/jobs").json()["jobs"]
            assert job_id in [j["job_id"] for j in mine]


def test_a_key_that_would_leave_the_directory_is_not_mirrored(tmp_path: Path) -> None:
    mirror = BucketMirror(None, "bucket", tmp_path)
    assert mirror._path("jobs/abc/report.json") == tmp_path / "objects/jobs/abc/report.json"
    assert mirror._path("uploads/t/../../../etc/passwd") is None
    assert mirror._path("/etc/passwd") is None
