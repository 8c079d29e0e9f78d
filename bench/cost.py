"""What jobs cost to run in AWS (us-east-1), from what one seed job was measured to use.

The inputs are measured on the local stack (`bench.trace.count_calls`): each S3 and SQS call
of one warm seed job by operation, the functions' busy time from the job's own events, and the
model's tokens. The prices are AWS's published on-demand prices for us-east-1 (below, with the
date they were written down; this machine cannot fetch them, so check them before relying on
the figures). Free tiers are left out: the cost is what the 1,000 jobs add to a bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRICES_READ = "2026-12-03"
"""When the prices below were written down (from aws.amazon.com/{lambda,s3,sqs,api-gateway}/
pricing, us-east-1, on-demand; they have not changed since 2023)."""


@dataclass(frozen=True)
class Prices:
    """USD, us-east-1."""

    lambda_request: float = 0.20 / 1e6
    lambda_gb_second: float = 0.0000166667  # x86_64
    s3_write: float = 0.005 / 1_000  # PUT, COPY, POST, LIST (S3 Standard)
    s3_read: float = 0.0004 / 1_000  # GET and all other requests
    sqs_request: float = 0.40 / 1e6  # standard queue, per 64 KB chunk of a request
    http_api_request: float = 1.00 / 1e6  # API Gateway HTTP API, first 300 million a month


S3_WRITES = {"PutObject", "CopyObject", "ListObjectsV2", "ListObjects", "DeleteObject"}
# DeleteObject is free in S3; it is counted with the writes here, an upper bound.


@dataclass(frozen=True)
class JobUse:
    """What one job used, as measured."""

    s3_calls: dict[str, int]
    """S3 calls by operation (GetObject, PutObject, ListObjectsV2, ...)."""
    sqs_sends: int
    """SendMessage/SendMessageBatch calls made by Brief."""
    messages: int
    """Messages delivered to functions (each is received and deleted by the event source
    mapping: about two more SQS requests per batch of messages, counted as one each here)."""
    function_s: dict[str, float]
    """Each function's busy time for the job, in seconds."""
    memory_mb: dict[str, int]
    api_requests: int
    """API Gateway requests: the POST, and the polls a client makes (assumed: one status
    read per second while the job runs is the client's choice, not counted; one POST and
    one report read are)."""
    model_tokens: tuple[int, int]
    """Input and output tokens of every model call of the job."""


def cost(use: JobUse, jobs: int, model_price: tuple[float, float] | None) -> dict[str, Any]:
    """The cost of `jobs` such jobs by line, in USD; the model at `model_price` (USD per
    million input and output tokens) if one is configured."""
    p = Prices()
    invocations = len(use.function_s)  # one invocation per stage per job, at least
    gb_s = sum(s * use.memory_mb.get(f, 1024) / 1024 for f, s in use.function_s.items())
    writes = sum(n for op, n in use.s3_calls.items() if op in S3_WRITES)
    reads = sum(n for op, n in use.s3_calls.items() if op not in S3_WRITES)
    # Delivered messages: one receive and one delete per message at most (the mapping
    # batches them, so this is an upper bound).
    sqs = use.sqs_sends + 2 * use.messages
    lines = {
        "lambda_requests": jobs * invocations * p.lambda_request,
        "lambda_compute": jobs * gb_s * p.lambda_gb_second,
        "s3_writes_and_lists": jobs * writes * p.s3_write,
        "s3_reads": jobs * reads * p.s3_read,
        "sqs": jobs * sqs * p.sqs_request,
        "api_gateway": jobs * use.api_requests * p.http_api_request,
    }
    infrastructure = sum(lines.values())
    tokens_in, tokens_out = use.model_tokens
    model = None
    if model_price is not None:
        model = jobs * (tokens_in * model_price[0] + tokens_out * model_price[1]) / 1e6
    return {
        "jobs": jobs,
        "lines_usd": lines,
        "infrastructure_usd": infrastructure,
        "model_usd": model,
        "model_price_per_million": model_price,
        "model_tokens_per_job": [tokens_in, tokens_out],
        "per_job": {
            "lambda_gb_seconds": gb_s,
            "s3_writes_and_lists": writes,
            "s3_reads": reads,
            "sqs_requests": sqs,
        },
        "prices_read": PRICES_READ,
    }


def describe(figures: dict[str, Any]) -> list[str]:
    """The cost table's lines."""
    jobs = figures["jobs"]
    per = figures["per_job"]
    lines = [
        f"Cost of {jobs:,} seed jobs in us-east-1 (on-demand prices of {figures['prices_read']}, "
        "no free tier):",
        f"   per job: {per['lambda_gb_seconds']:.2f} Lambda GB-s, {per['s3_writes_and_lists']} S3 "
        f"writes and lists, {per['s3_reads']} S3 reads, {per['sqs_requests']} SQS requests",
    ]
    for name, usd in figures["lines_usd"].items():
        lines.append(f"   {name.replace('_', ' '):<22} ${usd:8.4f}")
    lines.append(f"   {'infrastructure':<22} ${figures['infrastructure_usd']:8.4f}")
    tokens_in, tokens_out = figures["model_tokens_per_job"]
    if figures["model_usd"] is not None:
        price_in, price_out = figures["model_price_per_million"]
        lines.append(
            f"   {'model':<22} ${figures['model_usd']:8.4f}  ({tokens_in:,} in / {tokens_out:,} "
            f"out tokens a job at ${price_in:g} / ${price_out:g} per million)"
        )
    else:
        lines.append(f"   model: {tokens_in:,} in / {tokens_out:,} out tokens a job, no price set")
    return lines


def memory_mb() -> dict[str, int]:
    """Each stage's function memory, as the template sets it (Globals, then the function)."""
    from brief_local.template import Template, find_template

    raw = Template.load(find_template()).raw
    default = int(raw.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    memory = {}
    for stage in ("api", "research", "summarize", "combine"):
        properties = raw["Resources"][f"{stage.capitalize()}Function"]["Properties"]
        memory[stage] = int(properties.get("MemorySize", default))
    return memory


def from_calls(
    calls: dict[str, Any], jobs: int, model_price: tuple[float, float]
) -> dict[str, Any]:
    """The cost of `jobs` seed jobs from `bench.trace.count_calls`'s figures."""
    operations: dict[str, int] = calls["by_operation"]
    use = JobUse(
        s3_calls={op: n for op, n in operations.items() if not op.startswith("SendMessage")},
        sqs_sends=sum(n for op, n in operations.items() if op.startswith("SendMessage")),
        messages=calls["messages"],
        function_s=calls["function_s"],
        memory_mb=memory_mb(),
        api_requests=2,  # the POST and one read of the report
        model_tokens=(calls["model_tokens"][0], calls["model_tokens"][1]),
    )
    return cost(use, jobs, model_price)
