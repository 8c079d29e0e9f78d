"""`brief`: run the local stack, and research with Brief's API from the command line.

    brief local                       the local stack on http://127.0.0.1:8000 (Ctrl-C stops)
    brief demo [--deep]               one job with the bundled sample pages, offline
    brief research QUESTION URL...    submit a job, watch it live, print the cited report
    brief status JOB | report JOB | jobs | cancel JOB
    brief batch FILE.jsonl --out DIR  many jobs at once, one report file per job
    brief keys new NAME               a new API key and the settings line that admits it
    brief dlq show | redrive          dead messages: what died, and sending it back after a fix

The API is `--api URL`, else `$BRIEF_API`, else http://127.0.0.1:8000 (what `brief local`
serves); the key is `--key KEY`, else `$BRIEF_API_KEY`. Progress goes to stderr and results
to stdout, so `brief research ... > report.md` keeps just the report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from brief import logs
from brief_cli.client import (
    DEFAULT_API,
    JSON,
    ApiError,
    BriefClient,
    ClientError,
    StreamedEvent,
)

Command = Callable[[argparse.Namespace], int]

# Commands whose options and code live in the module that carries them out, imported only
# when the command is the one given: `brief status` never loads the local stack, the fakes
# or the AWS SDK. Each module's `add_arguments(parser)` adds its options and sets `run`.
DEFERRED = {
    "invoke": (
        "brief_local.invoke",
        "run one function once under AWS's runtime interface client (no Docker)",
    ),
    "chaos": (
        "brief_testing.chaos",
        "many jobs on the local stack under seeded faults; checks the invariants",
    ),
    "dlq": (
        "brief_cli.dlq",
        "dead messages: what exhausted its retries, and redriving it after a fix",
    ),
}


if TYPE_CHECKING:
    from brief_local.stack import StackOptions


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `brief` console script."""
    # httpx's package imports its own command line (click, rich, pygments: ~0.2 s) whenever
    # those are installed, as they are beside uvicorn; `brief` never uses it. A None entry
    # makes that import fail, which httpx expects (its `main` then says the extras are
    # missing), so `brief status` starts in about half the time.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser(command=next((a for a in arguments if not a.startswith("-")), None))
    args = parser.parse_args(arguments)
    logs.configure_console("WARNING")  # each line names its job and source, if it has them
    run: Command = args.run
    try:
        return run(args)
    except ClientError as exc:
        print(f"brief: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command, with its options; a deferred command's (`DEFERRED`) only when it is
    `command`, the one given, as its options come with its module."""
    parser = argparse.ArgumentParser(
        prog="brief", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The local stack.
    demo = commands.add_parser("demo", help="run one research job on the local stack, offline")
    kind = demo.add_mutually_exclusive_group()
    kind.add_argument(
        "--every-kind",
        action="store_true",
        help="mix every kind of source: pages, a web search, a vector search, a PDF document",
    )
    kind.add_argument(
        "--deep",
        action="store_true",
        help="deep research: depth 2, breadth 2 from two pages, follow-ups searching the rest; "
        "prints the tree of questions",
    )
    demo.set_defaults(run=_demo)
    local = commands.add_parser("local", help="run the local stack until interrupted")
    local.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    local.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the bucket (jobs, reports, uploads) in DIR across restarts; "
        "without it, everything is in memory and ends with the stack",
    )
    local.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="a host that may resolve to a private address (e.g. 127.0.0.1 for local pages)",
    )
    local.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, like sam deploy's --parameter-overrides "
        '(e.g. SummarizeModel=\'{"provider": "openai", ...}\')',
    )
    local.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable for every function (e.g. BRIEF_SEARCH_PROVIDER=searxng)",
    )
    local.set_defaults(run=_local)

    # The API's client commands share --api and --key.
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument(
        "--api",
        default=os.environ.get("BRIEF_API") or DEFAULT_API,
        help="the API's base URL (default: $BRIEF_API, else %(default)s)",
    )
    api.add_argument(
        "--key",
        default=os.environ.get("BRIEF_API_KEY"),
        help="an API key (default: $BRIEF_API_KEY); needed where the API has keys configured",
    )

    research = commands.add_parser(
        "research", parents=[api], help="research a question: follow it live, print the report"
    )
    research.add_argument("question", help="the question to answer")
    research.add_argument("sources", nargs="*", metavar="SOURCE", help="a URL to research")
    research.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="QUERY",
        help="also research the top web results of QUERY (repeatable)",
    )
    research.add_argument(
        "--search-limit",
        type=int,
        choices=range(1, 11),
        default=5,
        metavar="N",
        help="how many results of each --search to research (1-10, default 5)",
    )
    research.add_argument(
        "--max-sources",
        type=int,
        choices=range(1, 51),
        metavar="N",
        help="summarize at most N of the documents retrieved (1-50; default: all): each "
        "source's results in turn, the rest listed as skipped",
    )
    research.add_argument(
        "--depth",
        type=int,
        choices=range(1, 4),
        default=1,
        metavar="D",
        help="deep research: D levels of follow-up questions, each searched on the web and "
        "read (1-3; default 1, the sources given only)",
    )
    research.add_argument(
        "--breadth",
        type=int,
        choices=range(1, 7),
        metavar="B",
        help="follow-up questions per question, with --depth (1-6; default 3)",
    )
    research.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="with --depth: ask no further level once the model cost reaches USD",
    )
    research.add_argument(
        "--max-seconds",
        type=int,
        metavar="S",
        help="with --depth: start no level after S seconds (10-3600); the report is "
        "written from what was found",
    )
    research.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of Markdown"
    )
    research.set_defaults(run=_research)

    status = commands.add_parser("status", parents=[api], help="a job's state and sources")
    status.add_argument("job", help="the job's id")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    status.set_defaults(run=_status)

    report = commands.add_parser("report", parents=[api], help="a job's report")
    report.add_argument("job", help="the job's id")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write the report to this file, as its extension says: .md (default), .html, "
        ".pdf, .docx or .json",
    )
    report.set_defaults(run=_report)

    jobs = commands.add_parser("jobs", parents=[api], help="your jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20, help="how many (default 20, at most 100)")
    jobs.add_argument("--json", action="store_true", help="print the API's JSON")
    jobs.set_defaults(run=_jobs)

    cancel = commands.add_parser("cancel", parents=[api], help="cancel a job")
    cancel.add_argument("job", help="the job's id")
    cancel.set_defaults(run=_cancel)

    batch = commands.add_parser(
        "batch", parents=[api], help="run every job of a JSON Lines file, one report per job"
    )
    batch.add_argument(
        "file", type=Path, help='one request per line: {"question": ..., "sources": [...]}'
    )
    batch.add_argument(
        "--out", type=Path, help="where to write the reports (default: ./batch-<batch id>)"
    )
    batch.set_defaults(run=_batch)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    new = key_commands.add_parser("new", help="make a new API key and its settings entry")
    new.add_argument("name", help="who the key is for (letters, digits, '_', '.', '-')")
    new.set_defaults(run=_keys_new)

    for name, (module, summary) in DEFERRED.items():
        deferred = commands.add_parser(name, help=summary)
        if name == command:
            importlib.import_module(module).add_arguments(deferred)

    # Further commands register here, each with `set_defaults(run=<function(args) -> int>)`.
    return parser


# -- the local stack --------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from brief_testing.demo import run_demo

    return asyncio.run(run_demo(every_kind=args.every_kind, deep=args.deep))


def _local(args: argparse.Namespace) -> int:
    import asyncio

    from brief_local.stack import StackOptions

    try:
        parameters = dict(_assignment(item) for item in args.parameter)
        env = dict(_assignment(item) for item in args.env)
    except ValueError as exc:
        print(f"brief local: {exc}", file=sys.stderr)
        return 2
    if args.allow_host:
        env["BRIEF_ALLOWED_HOSTS"] = ",".join(args.allow_host)
    # The fixed name `brief invoke --endpoint` expects (its resources are named alike); moto
    # in a process of its own, as `make bench` measures it, so it does not share this
    # process's GIL with the API and the functions.
    options = StackOptions(
        api_port=args.port,
        environment=env,
        parameters=parameters,
        name="brief-local",
        moto_process=True,
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
    return asyncio.run(_serve(options))


def _assignment(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"{item!r} is not NAME=VALUE")
    return name, value


async def _serve(options: StackOptions) -> int:
    import asyncio

    from brief_local.stack import LocalStack

    async with LocalStack(options) as stack:
        print(f"Brief's API: {stack.api_url}  (the web page at {stack.api_url}/, OpenAPI at /docs)")
        print(f"AWS endpoint (moto): {stack.endpoint}   bucket: {stack.bucket}")
        print(f"Dead messages: brief dlq show --endpoint {stack.endpoint}")
        if options.data_dir is None:
            print("State (S3, SQS) is kept in memory and ends with this (--data-dir DIR keeps")
            print("the bucket, so every job and report, across restarts).")
        else:
            print(
                f"The bucket is kept in {options.data_dir} ({stack.restored} objects restored); "
                "queued messages are not: a job still running at a stop is ended by the "
                "sweeper after restart."
            )
        print("Ctrl-C to stop.")
        await asyncio.Event().wait()
    return 0


# -- research and following a job -------------------------------------------------------


def _client(args: argparse.Namespace) -> BriefClient:
    return BriefClient(args.api, args.key)


def _research(args: argparse.Namespace) -> int:
    searches = ({"search": q, "limit": args.search_limit} for q in args.search)
    sources: list[str | JSON] = [*args.sources, *searches]
    if not sources:
        print("brief research: give at least one SOURCE or --search QUERY", file=sys.stderr)
        return 2
    with _client(args) as client:
        chosen = {
            "max_sources": args.max_sources,
            "depth": args.depth if args.depth > 1 else None,
            "breadth": args.breadth,
            "max_cost_usd": args.max_cost,
            "max_seconds": args.max_seconds,
        }
        options = {k: v for k, v in chosen.items() if v is not None}
        accepted = client.submit(args.question, sources, **options)
        submitted = time.monotonic()
        job_id = accepted["job_id"]
        err = sys.stderr
        err.write(f"Job {job_id} accepted; progress (Ctrl-C stops watching, not the job):\n")
        err.flush()
        try:
            last = follow(client, job_id, err, started=submitted)
        except KeyboardInterrupt:
            err.write(f"\nStopped watching. The job goes on: brief status {job_id}\n")
            return 130
        elapsed = time.monotonic() - submitted
        view = client.job(job_id)
        err.write(summary_line(last, view, elapsed) + "\n")
        if cost := usage_line(view):
            err.write(cost + "\n")
        if last != "report_ready":
            return 1
        if args.json:
            print(json.dumps(client.report(job_id), indent=2))
        else:
            sys.stdout.write(client.report_markdown(job_id))
        return 0


def follow(client: BriefClient, job_id: str, out: TextIO, *, started: float) -> str:
    """Print each of the job's events as it arrives, and the report's draft as the model
    writes it; the kind of the last (terminal) event."""
    last = ""
    draft = PrintedDraft(out)
    for event in client.events(job_id):
        last = event.kind
        if event.kind == "report_text":
            draft.add(event.data)
            continue
        draft.end()
        out.write(event_line(event, time.monotonic() - started) + "\n")
        out.flush()
    draft.end()
    return last


DRAFT_HEADER = "  draft (the model is writing; the report follows):\n"


class PrintedDraft:
    """The answer as a streaming model writes it (`report_text` events), printed as it grows;
    the report printed at the end replaces it."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown = 0  # characters of the draft printed since it last started
        self._open = False  # its line is the last one written
        self._started = False

    def add(self, data: JSON) -> None:
        """Print the text an event adds (a fresh start when its offset is 0)."""
        text, offset = str(data.get("text") or ""), int(data.get("offset") or 0)
        if not self._open:
            header = "" if self._started else DRAFT_HEADER
            self._out.write(header + "  ")
            self._open = self._started = True
        if offset == 0 and self._shown:
            self._out.write("\n  (the model started over)\n  ")
            self._shown = 0
        self._out.write(text.replace("\n", "\n  "))
        self._shown = offset + len(text)
        self._out.flush()

    def end(self) -> None:
        """Close the draft's lines before the next event's."""
        if self._open:
            self._out.write("\n")
            self._open = False


def event_line(event: StreamedEvent, elapsed_s: float) -> str:
    """`   0.57s  source_fetched [4] — ok`: one line per event."""
    index = event.data.get("index")
    where = f" [{index + 1}]" if isinstance(index, int) else ""
    detail = event.data.get("detail")
    return f"  {elapsed_s:6.2f}s  {event.kind}{where}{f' — {detail}' if detail else ''}"


def summary_line(last: str, view: JSON, elapsed_s: float) -> str:
    """The line that closes a job's progress."""
    sources = view.get("sources") or []
    usable = sum(1 for s in sources if s.get("state") in ("ok", "cached"))
    if last == "report_ready":
        return f"Report ready after {elapsed_s:.2f} s: {usable} of {len(sources)} sources used."
    if last == "job_cancelled":
        return f"Job cancelled after {elapsed_s:.2f} s."
    return f"Job failed after {elapsed_s:.2f} s: {view.get('reason') or 'no reason given'}"


def usage_line(view: JSON) -> str | None:
    """`Model: 6 calls, 5,210 tokens in, 640 out, about $0.0012 (summarize $0.0004, combine
    $0.0008)`; None when no model was called (the offline summarizer costs nothing)."""
    usage = view.get("usage") or {}
    if not usage.get("calls"):
        return None
    line = (
        f"Model: {usage['calls']} calls, {usage.get('input_tokens', 0):,} tokens in, "
        f"{usage.get('output_tokens', 0):,} out, about ${usage.get('cost_usd', 0.0):.4f}"
    )
    stages = view.get("stage_usage") or {}
    parts = [
        f"{name} ${u.get('cost_usd', 0.0):.4f}" for name, u in stages.items() if u.get("calls")
    ]
    if parts:
        line += f" ({', '.join(parts)})"
    return line


# -- one job ----------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        view = client.job(args.job)
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(format_view(view))
    return 1 if view["state"] in ("failed", "cancelled") else 0


def tree_lines(tree: list[JSON], empty: str) -> list[str]:
    """A deep job's questions, indented by level, each with the numbers of the sources that
    answered it (as the report numbers them), or `empty`."""
    lines = []
    for node in tree:
        answered = "".join(f"[{i + 1}]" for i in node["sources"]) or empty
        lines.append(f"{'  ' * node['level']}{node['node']} {node['question']} {answered}")
    return lines


def format_view(view: JSON) -> str:
    """A job's view as a person reads it."""
    lines = [f"Job {view['job_id']}: {view['state']}", f"Question: {view['question']}"]
    if view.get("reason"):
        lines.append(f"Reason: {view['reason']}")
    lines += [f"Warning: {w}" for w in view.get("warnings") or []]
    sources = view.get("sources") or []
    if sources:
        lines.append("Sources:")
        for s in sources:
            title = f"  ({s['title']})" if s.get("title") else ""
            reason = f" — {s['reason']}" if s.get("reason") else ""
            lines.append(f"  [{s['index'] + 1}] {s['state']:<7} {s['url']}{title}{reason}")
            if s.get("waiting"):
                lines.append(f"      waiting: {s['waiting']['detail']}")
    if view.get("tree"):  # a deep job's questions so far
        lines += ["Questions followed:", *tree_lines(view["tree"], "(none yet, or none new)")]
    if view.get("waiting"):
        lines.append(f"Combine waiting: {view['waiting']['detail']}")
    expected = view.get("summaries_expected")
    if expected is not None:
        lines.append(f"Summaries: {view.get('summaries_done', 0)} of {expected}")
    timings = view.get("timings") or {}
    parts = [
        f"{name} {timings[key]} ms"
        for name, key in (
            ("queued", "queued_ms"),
            ("retrieval", "retrieval_ms"),
            ("summarize", "summarize_ms"),
            ("combine", "combine_ms"),
            ("total", "total_ms"),
        )
        if timings.get(key) is not None
    ]
    if parts:
        lines.append("Timings: " + " · ".join(parts))
    if cost := usage_line(view):
        lines.append(cost)
    return "\n".join(lines)


# `brief report -o FILE` writes the format its extension names (.json: the report's JSON).
FILE_FORMATS = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


def _report(args: argparse.Namespace) -> int:
    fmt = FILE_FORMATS.get(args.output.suffix.lower()) if args.output is not None else None
    if args.output is not None and args.output.suffix.lower() == ".json":
        args.json = True
    with _client(args) as client:
        if args.json:
            body = (json.dumps(client.report(args.job), indent=2) + "\n").encode()
        elif fmt is not None:
            body = client.report_file(args.job, fmt)
        else:
            body = client.report_markdown(args.job).encode()
    if args.output is None:
        sys.stdout.write(body.decode())
    else:
        try:
            args.output.write_bytes(body)
        except OSError as exc:
            raise ClientError(f"cannot write {args.output}: {exc.strerror}") from exc
        print(f"Wrote {args.output}", file=sys.stderr)
    return 0


def _jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.jobs(limit=max(1, min(args.limit, 100)))
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    if not page["jobs"]:
        print("No jobs yet.")
        return 0
    for job in page["jobs"]:
        question = job["question"] if len(job["question"]) <= 60 else job["question"][:59] + "…"
        created = job["created_at"][:19].replace("T", " ")
        print(f"{job['job_id']}  {job['state']:<11} {created}  {question}")
    if page.get("cursor"):
        print(f"(more: brief jobs --limit {min(args.limit * 2, 100)})", file=sys.stderr)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        view = client.cancel(args.job)
    print(f"Job {args.job} is {view['state']}.")
    return 0


# -- batches ----------------------------------------------------------------------------


def read_batch(path: Path) -> list[tuple[int, JSON]]:
    """The requests of a JSON Lines file with their line numbers (blank lines skipped);
    ClientError names a line that is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from exc
    requests: list[tuple[int, JSON]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ClientError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(request, dict):
            raise ClientError(f'{path}:{number}: expected {{"question": ..., "sources": [...]}}')
        requests.append((number, request))
    if not requests:
        raise ClientError(f"{path} has no requests")
    return requests


def _batch(args: argparse.Namespace) -> int:
    lines = read_batch(args.file)
    err = sys.stderr
    with _client(args) as client:
        try:
            accepted = client.submit_batch([request for _, request in lines])
        except ApiError as exc:
            raise ClientError(_batch_problem(exc, args.file, [n for n, _ in lines])) from exc
        batch_id, size = accepted["batch_id"], accepted["size"]
        err.write(f"Batch {batch_id}: {size} jobs accepted.\n")
        out = args.out or Path(f"batch-{batch_id}")
        out.mkdir(parents=True, exist_ok=True)
        collected = BatchReports(client, batch_id, out, size)
        watch_batch(client, batch_id, err, on_change=collected.collect)
        err.write(f"{collected.written} of {size} reports written to {out}/\n")
        for job in collected.failed:
            reason = _reason(client, job)
            err.write(f"  job {job['n'] + 1} ({job['job_id']}) {job['state']}: {reason}\n")
    return 1 if collected.failed else 0


ENDED = ("done", "failed", "cancelled")


class BatchReports:
    """Writes each report of a batch as its job finishes, and keeps the jobs that did not."""

    def __init__(self, client: BriefClient, batch_id: str, out: Path, size: int) -> None:
        self._client, self._batch_id, self._out = client, batch_id, out
        self._width = len(str(size))
        self._seen: set[int] = set()
        self._frontier = 0  # every job numbered below it has ended and been collected
        self.written = 0
        self.failed: list[JSON] = []

    def collect(self, view: JSON) -> None:
        """Fetch the jobs that ended since the last call (only when the counts say some did),
        writing each done job's report. The pages start at the first job not collected yet,
        so a 10,000-job batch is not read from its start each time a job ends."""
        if sum(view["counts"].get(s, 0) for s in ENDED) == len(self._seen):
            return
        after = self._frontier - 1 if self._frontier else None
        for job in self._client.batch_jobs(self._batch_id, states=ENDED, after=after):
            if job["n"] in self._seen:
                continue
            self._seen.add(job["n"])
            if job["state"] == "done":
                name = f"{job['n'] + 1:0{self._width}d}-{job['job_id']}.md"
                report = self._client.report_markdown(job["job_id"])
                (self._out / name).write_text(report, encoding="utf-8")
                self.written += 1
            else:
                self.failed.append(job)
        while self._frontier in self._seen:
            self._frontier += 1


def _batch_problem(exc: ApiError, path: Path, numbers: list[int]) -> str:
    """A 422 on `jobs.N.field` as `FILE:LINE: field: message`."""
    found = []
    for error in exc.body.get("errors") or []:
        match = re.match(r"^jobs\.(\d+)\.?(.*)$", str(error.get("field", "")))
        if match and int(match.group(1)) < len(numbers):
            where = f"{path}:{numbers[int(match.group(1))]}"
            found.append(f"{where}: {match.group(2) or 'request'}: {error.get('message')}")
    return "\n".join(found) if found else str(exc)


def watch_batch(
    client: BriefClient,
    batch_id: str,
    out: TextIO,
    *,
    every_s: float = 0.5,
    on_change: Callable[[JSON], None] | None = None,
) -> JSON:
    """Show the batch's progress (one updating line on a terminal) until every job ended,
    calling `on_change` with each view whose counts moved. Each poll reads one small page:
    the counts cost the same at any batch size."""
    tty = out.isatty()
    shown = ""
    while True:
        view = client.batch(batch_id, limit=1)
        line = batch_line(view)
        if line != shown:
            if on_change is not None:
                on_change(view)
            out.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            out.flush()
            shown = line
        if not any(view["counts"].get(s) for s in ("pending", "running")):
            if tty:
                out.write("\n")
            return view
        time.sleep(every_s)


def batch_line(view: JSON) -> str:
    """`done 3 · failed 1 · running 4 · pending 2 (of 10)`."""
    counts: dict[str, int] = view["counts"]
    running = counts.get("running", 0)
    parts = [
        f"done {counts.get('done', 0)}",
        f"failed {counts.get('failed', 0) + counts.get('cancelled', 0)}",
        f"running {running}",
        f"pending {counts.get('pending', 0)}",
    ]
    return " · ".join(parts) + f" (of {view['size']})"


def _reason(client: BriefClient, job: JSON) -> str:
    try:
        reason: Any = client.job(job["job_id"]).get("reason")
    except ClientError as exc:
        return str(exc)
    return str(reason or "no reason given")


# -- keys -------------------------------------------------------------------------------


def _keys_new(args: argparse.Namespace) -> int:
    from brief.api.auth import new_key, settings_entry

    key = new_key()
    try:
        entry = settings_entry(args.name, key)
    except ValueError as exc:
        print(f"brief keys new: {exc}", file=sys.stderr)
        return 2
    print(f"API key for {args.name} (shown once: keep it secret):")
    print(f"  {key}")
    print("The API admits it with this setting (join several entries with commas):")
    print(f"  BRIEF_API_KEYS={entry}")
    print("Call with it: `--key KEY`, or `export BRIEF_API_KEY=KEY`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
