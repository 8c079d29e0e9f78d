"""Dead letters, for an operator: what died, and sending it back once the cause is fixed.

The dead-letter function drains every DLQ (that is how a job learns it failed) and first
keeps each dead message in the bucket, at `dead/{queue}/{message id}.json`, with the queue
it died on, its receive count, when it died, the job it named and why. `show` lists those
kept messages and any still waiting in a DLQ (peeked at, not consumed). `redrive` sends
them back to their work queue: it sends first and forgets the kept copy only after, so an
interruption loses nothing (at worst a message is sent twice, which every stage absorbs).

A redriven message meets its job as the dead letter left it: failed, and the research stage
does nothing for a failed job. So a job whose only failure is the dead letter's (stage
`deadletter`) is revived first: its `failed.json` is removed and a `job_redriven` event
says so. A job comes back whole: every kept message of a job that is redriven goes with it.
A message whose job ended otherwise (done, cancelled, failed at another stage) would change
nothing and is left where it is.

The stack is found as the other commands find theirs: the local stack by its moto endpoint
(`brief local` prints it) and its name (`brief-local`), a deployed one by its CloudFormation
outputs (the name `sam deploy` gave it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as AwsError

from brief import keys
from brief.adapters.s3 import S3BlobStore
from brief.jobstore import JobStore
from brief.models import DeadMessage, utcnow
from brief_cli.client import ClientError

Role = Literal["intake", "summarize", "combine"]
ROLES: tuple[Role, ...] = ("intake", "summarize", "combine")
LOCAL_STACK = "brief-local"  # the name `brief local` gives its resources
_WORK = {"intake": "IntakeQueue", "summarize": "SummarizeQueue", "combine": "CombineQueue"}
_PEEK_ROUNDS = 10
_HOLD_S = 60  # how long a redrive keeps a DLQ message it is moving out of others' sight


@dataclass(frozen=True)
class Stack:
    """Where the dead letters are: the bucket, and each work queue with its DLQ."""

    bucket: str
    queues: dict[Role, str]
    dead_letter_queues: dict[Role, str]


@dataclass(frozen=True)
class DeadEntry:
    """One dead message as `brief dlq` finds it: kept in the bucket (`key`), or still waiting
    in its DLQ."""

    message: DeadMessage
    key: str | None = None  # the kept copy; None while it waits in a DLQ
    queue_url: str | None = None  # the DLQ it waits in
    receipt: str | None = None  # a redrive's hold on a waiting message

    @property
    def kept(self) -> bool:
        """Whether the dead-letter function has kept it (else it waits in a DLQ)."""
        return self.key is not None


@dataclass
class Redrive:
    """What a redrive did: messages sent back, jobs revived, messages left and why."""

    sent: list[DeadEntry] = field(default_factory=list)
    revived: dict[str, str] = field(default_factory=dict)  # job -> the failure lifted
    skipped: list[tuple[DeadEntry, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def connect(
    *, endpoint: str | None, stack: str | None
) -> AsyncIterator[tuple[Any, Any, Stack]]:
    """S3 and SQS clients and the stack's resources, found locally or on CloudFormation."""
    import aioboto3

    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    stack = stack or os.environ.get("AWS_SAM_STACK_NAME") or (LOCAL_STACK if endpoint else None)
    if stack is None:
        raise ClientError(
            "which stack? --endpoint URL for the local stack (the moto endpoint `brief local` "
            "prints), or --stack NAME for a deployed one (or set $AWS_SAM_STACK_NAME)"
        )
    options: dict[str, Any] = {"region_name": os.environ.get("AWS_REGION") or "us-east-1"}
    if endpoint:
        options["endpoint_url"] = endpoint
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            options |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    session = aioboto3.Session()
    try:
        async with (
            session.client("s3", **options) as s3,
            session.client("sqs", **options) as sqs,
        ):
            if endpoint:
                found = await _local(sqs, stack)
            else:
                async with session.client("cloudformation", **options) as cfn:
                    found = await _deployed(cfn, stack)
            yield s3, sqs, found
    except (AwsError, BotoCoreError) as exc:
        where = endpoint or f"stack {stack}"
        raise ClientError(f"cannot reach the dead letters of {where}: {exc}") from exc


async def _local(sqs: Any, name: str) -> Stack:
    """The local stack's resources, by the names it gives them (`{name}-{LogicalId}`)."""
    queues: dict[Role, str] = {}
    dead: dict[Role, str] = {}
    for role in ROLES:
        logical = _WORK[role]
        dlq = logical.replace("Queue", "DeadLetterQueue")
        try:
            queues[role] = (await sqs.get_queue_url(QueueName=f"{name}-{logical}"))["QueueUrl"]
            dead[role] = (await sqs.get_queue_url(QueueName=f"{name}-{dlq}"))["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist as exc:
            raise ClientError(
                f"no local stack named {name} there (its queue {name}-{logical} is missing); "
                "pass the name `brief local` runs under with --stack"
            ) from exc
    return Stack(bucket=f"{name}-bucket", queues=queues, dead_letter_queues=dead)


async def _deployed(cfn: Any, name: str) -> Stack:
    """A deployed stack's resources, from its CloudFormation outputs."""
    stacks = (await cfn.describe_stacks(StackName=name))["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        return Stack(
            bucket=outputs["BucketName"],
            queues={r: outputs[f"{_WORK[r]}Url"] for r in ROLES},
            dead_letter_queues={
                r: outputs[f"{_WORK[r].replace('Queue', 'DeadLetterQueue')}Url"] for r in ROLES
            },
        )
    except KeyError as exc:
        raise ClientError(f"stack {name} has no {exc.args[0]} output") from exc


# -- show -------------------------------------------------------------------------------


async def dead_letters(
    s3: Any, sqs: Any, stack: Stack, *, queue: Role | None = None, job: str | None = None
) -> list[DeadEntry]:
    """Every dead message, kept or waiting in a DLQ (peeked at: not consumed), newest first."""
    store = JobStore(S3BlobStore(s3, stack.bucket))
    kept = [DeadEntry(m, key=k) for k, m in await store.dead_messages(queue)]
    waiting: list[DeadEntry] = []
    for role in [queue] if queue else ROLES:
        waiting += await _peek(sqs, stack.dead_letter_queues[role], role)
    known = {d.message.message_id for d in kept}  # kept while we looked: listed once
    waiting = [d for d in waiting if d.message.message_id not in known]
    found = [d for d in kept + waiting if job is None or d.message.job_id == job]
    return sorted(found, key=lambda d: d.message.died_at, reverse=True)


async def _peek(sqs: Any, url: str, role: Role) -> list[DeadEntry]:
    """The messages waiting in a DLQ, left visible for the dead-letter function."""
    seen: dict[str, DeadEntry] = {}
    for _ in range(_PEEK_ROUNDS):
        got = await _receive(sqs, url, role, visibility_s=0)
        fresh = [d for d in got if d.message.message_id not in seen]
        if not fresh:
            break
        seen |= {d.message.message_id: d for d in fresh}
    return list(seen.values())


async def _receive(sqs: Any, url: str, role: Role, *, visibility_s: int) -> list[DeadEntry]:
    response = await sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility_s,
        AttributeNames=["All"],
    )
    return [_waiting(m, url, role) for m in response.get("Messages") or []]


def _waiting(message: dict[str, Any], url: str, role: Role) -> DeadEntry:
    """A DLQ message as a dead letter the dead-letter function has not seen yet."""
    body: str = message.get("Body", "")
    attributes = message.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    sent_at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None
    return DeadEntry(
        DeadMessage(
            message_id=message["MessageId"],
            queue=role,
            dead_letter_queue=url,
            body=body,
            body_chars=len(body),
            receive_count=int(attributes.get("ApproximateReceiveCount", "0")) or None,
            sent_at=sent_at,
            died_at=sent_at or utcnow(),
            job_id=_job_named(body),
            reason="still in the DLQ: the dead-letter function has not taken it yet",
        ),
        queue_url=url,
        receipt=message.get("ReceiptHandle"),
    )


def _job_named(body: str) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    job = payload.get("job_id") if isinstance(payload, dict) else None
    return job if isinstance(job, str) and re.fullmatch(r"[0-9a-f]{32}", job) else None


# -- redrive ----------------------------------------------------------------------------


async def redrive(
    s3: Any, sqs: Any, stack: Stack, *, queue: Role | None = None, job: str | None = None
) -> Redrive:
    """Send the chosen dead messages back to their work queues, reviving their jobs first."""
    store = JobStore(S3BlobStore(s3, stack.bucket))
    everything = [DeadEntry(m, key=k) for k, m in await store.dead_messages()]
    chosen = [d for d in everything if _matches(d, queue, job)]
    jobs = {d.message.job_id for d in chosen if d.message.job_id}
    # A job comes back whole: its other dead messages go too, whatever their queue.
    chosen += [d for d in everything if d not in chosen and d.message.job_id in jobs]
    held = await _hold(sqs, stack, queue, job)
    chosen += held
    jobs |= {d.message.job_id for d in held if d.message.job_id}

    result = Redrive()
    blocked = {j: why for j in sorted(jobs) if (why := await _revive(store, s3, stack, j, result))}
    for dead in chosen:
        message = dead.message
        why = blocked.get(message.job_id or "") or _unsendable(message)
        role = message.queue
        if why or role == "unknown":
            result.skipped.append((dead, why))
            if dead.receipt:  # back to the dead-letter function, which will keep it
                await sqs.change_message_visibility(
                    QueueUrl=dead.queue_url,
                    ReceiptHandle=dead.receipt,
                    VisibilityTimeout=0,
                )
            continue
        await sqs.send_message(QueueUrl=stack.queues[role], MessageBody=message.body)
        if dead.key is not None:
            await s3.delete_object(Bucket=stack.bucket, Key=dead.key)
        if dead.receipt is not None:
            await sqs.delete_message(QueueUrl=dead.queue_url, ReceiptHandle=dead.receipt)
        result.sent.append(dead)
    return result


def _matches(dead: DeadEntry, queue: Role | None, job: str | None) -> bool:
    return (queue is None or dead.message.queue == queue) and (
        job is None or dead.message.job_id == job
    )


async def _hold(sqs: Any, stack: Stack, queue: Role | None, job: str | None) -> list[DeadEntry]:
    """The chosen messages still in a DLQ, kept out of the dead-letter function's sight
    while they are moved; the others are let go at once."""
    held: list[DeadEntry] = []
    for role in [queue] if queue else ROLES:
        url = stack.dead_letter_queues[role]
        for _ in range(_PEEK_ROUNDS):
            got = await _receive(sqs, url, role, visibility_s=_HOLD_S)
            if not got:
                break
            for dead in got:
                if _matches(dead, None, job):
                    held.append(dead)
                else:
                    await sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=dead.receipt, VisibilityTimeout=0
                    )
    return held


async def _revive(store: JobStore, s3: Any, stack: Stack, job_id: str, result: Redrive) -> str:
    """Lift a failure that was only the dead letter's; why the job's messages must stay
    otherwise ("" when they may go)."""
    failure = await store.failure(job_id)
    if failure is None:
        if await store.report(job_id) is not None:
            return f"job {job_id} is done: sending it again would change nothing"
        if await store.cancelled(job_id):
            return f"job {job_id} was cancelled"
        return ""
    if failure.stage != "deadletter":
        return f"job {job_id} failed in {failure.stage}, not for lack of retries: {failure.reason}"
    await s3.delete_object(Bucket=stack.bucket, Key=keys.failed(job_id))
    await store.event(job_id, "job_redriven", utcnow(), detail=f"it had failed: {failure.reason}")
    await store.watch(await store.job(job_id))  # the sweeper had let it go when it failed
    result.revived[job_id] = failure.reason
    return ""


def _unsendable(message: DeadMessage) -> str:
    if message.queue == "unknown":
        return "it came from no queue Brief knows, so it has nowhere to go back to"
    if message.truncated:
        return f"only its first {len(message.body)} of {message.body_chars} characters were kept"
    return ""


# -- what a person reads ----------------------------------------------------------------


def age(at: datetime, now: datetime) -> str:
    """`42s`, `7m`, `3h`, `2d`: how long ago."""
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def preview(body: str, width: int = 100) -> str:
    """The body on one line, cut to `width` characters."""
    flat = "".join(c if c.isprintable() else " " for c in body.replace("\n", " "))
    if len(flat) <= width and len(body) == len(flat):
        return flat or "(empty)"
    return f"{flat[: width - 1]}… ({len(body)} characters)"


def format_dead(dead: Sequence[DeadEntry], now: datetime, *, more: int = 0) -> str:
    """The listing `brief dlq show` prints, newest first."""
    if not dead:
        return "No dead messages."
    lines: list[str] = []
    for d in dead:
        m = d.message
        where = "kept" if d.kept else "in DLQ"
        received = f", received {m.receive_count} times" if m.receive_count else ""
        lines.append(
            f"{m.queue:<9}  job {m.job_id or '-':<32}  {age(m.died_at, now):>4} ago  "
            f"({where}{received})  {m.message_id}"
        )
        lines.append(f"  why:  {m.reason}")
        lines.append(f"  body: {preview(m.body)}")
    kept = sum(1 for d in dead if d.kept)
    total = f"{len(dead)} dead message{'s' if len(dead) != 1 else ''}"
    lines.append(f"{total} ({kept} kept, {len(dead) - kept} still in a DLQ)")
    if more:
        lines.append(f"({more} older not shown: raise --limit)")
    return "\n".join(lines)


def format_redrive(result: Redrive) -> str:
    """What `brief dlq redrive` did, as a person reads it."""
    lines = [
        f"Job {job} revived (it had failed: {reason})" for job, reason in result.revived.items()
    ]
    for d in result.sent:
        m = d.message
        lines.append(f"Sent {m.message_id} back to the {m.queue} queue (job {m.job_id or '-'})")
    for d, why in result.skipped:
        lines.append(f"Left {d.message.message_id} ({d.message.queue}): {why}")
    n = len(result.sent)
    lines.append(f"Redrove {n} dead message{'s' if n != 1 else ''}.")
    return "\n".join(lines)


# -- the command line -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`brief dlq show|redrive`, for the `brief` command's subparser."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--endpoint",
        help="the local stack's AWS endpoint (moto), as `brief local` prints it "
        "(default: $AWS_ENDPOINT_URL); without it, a deployed stack",
    )
    where.add_argument(
        "--stack",
        help=f"the stack's name: the deployed stack's (default: $AWS_SAM_STACK_NAME), "
        f"or the local stack's ({LOCAL_STACK}, what `brief local` runs under)",
    )
    where.add_argument("--queue", choices=ROLES, help="only messages that died on this queue")
    commands = parser.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    show = commands.add_parser(
        "show", parents=[where], help="list dead messages (kept ones and any still in a DLQ)"
    )
    show.add_argument("--job", help="only messages of this job")
    show.add_argument("--limit", type=int, default=20, help="how many, newest first (20)")
    show.add_argument("--json", action="store_true", help="print them as JSON")
    show.set_defaults(run=_show)
    again = commands.add_parser(
        "redrive", parents=[where], help="send dead messages back to their queues after a fix"
    )
    again.add_argument("--job", help="only this job's messages")
    again.add_argument("--yes", action="store_true", help="do not ask first")
    again.set_defaults(run=_redrive)


def _show(args: argparse.Namespace) -> int:
    async def main() -> tuple[list[DeadEntry], datetime]:
        async with connect(endpoint=args.endpoint, stack=args.stack) as (s3, sqs, stack):
            found = await dead_letters(s3, sqs, stack, queue=args.queue, job=args.job)
        return found, utcnow()

    found, now = asyncio.run(main())
    shown = found[: max(1, args.limit)]
    if args.json:
        rows = [{**d.message.model_dump(mode="json"), "kept": d.kept} for d in shown]
        print(json.dumps(rows, indent=2))
    else:
        print(format_dead(shown, now, more=len(found) - len(shown)))
    return 0


def _redrive(args: argparse.Namespace) -> int:
    async def plan() -> list[DeadEntry]:
        async with connect(endpoint=args.endpoint, stack=args.stack) as (s3, sqs, stack):
            return await dead_letters(s3, sqs, stack, queue=args.queue, job=args.job)

    async def main() -> Redrive:
        async with connect(endpoint=args.endpoint, stack=args.stack) as (s3, sqs, stack):
            return await redrive(s3, sqs, stack, queue=args.queue, job=args.job)

    if not args.yes:
        found = asyncio.run(plan())
        if not found:
            print("No dead messages.")
            return 0
        print(format_dead(found, utcnow()))
        if not sys.stdin.isatty():
            print("brief dlq redrive: add --yes to redrive without a terminal", file=sys.stderr)
            return 2
        if input(f"Redrive {len(found)} (and their jobs' other dead messages)? [y/N] ") not in (
            "y",
            "yes",
        ):
            return 1
    result = asyncio.run(main())
    print(format_redrive(result))
    return 1 if result.skipped else 0
