"""The local stack's moto server reads moto's module list once, and still finds S3 and SQS;
its queues keep every message when calls overlap."""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import moto
import moto.backends
from moto import mock_aws

from brief_local.motoserver import (
    _receive_in_passes,
    atomic_conditional_writes,
    indexed_listings,
    serialize_queues,
    speed_up,
    steady_listings,
)

SIGNED = (  # moto reads the region and service from the credential scope; it checks no more
    "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def test_moto_lists_its_modules_once_and_the_list_is_the_same() -> None:
    path = os.path.dirname(moto.__file__)
    on_disk = sorted(
        name
        for name in os.listdir(path)
        if os.path.isdir(os.path.join(path, name)) and not name.startswith("__")
    )
    speed_up()
    first = moto.backends.list_of_moto_modules
    speed_up()  # a second stack in the same process changes nothing

    assert moto.backends.list_of_moto_modules is first
    assert list(first()) == on_disk
    assert {"s3", "sqs"} <= set(first())


# Overlapping SQS calls, as the local stack's pollers make them: with moto's own backend a
# receive raised ValueError (a 500) in about 1 call of 9 here, and deleted messages came back.
def _client() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def _depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(v) for v in attributes.values())


def _at_once(work: Callable[[], None], threads: int) -> list[str]:
    """`work` on `threads` threads at once; what each raised."""
    errors: list[str] = []

    def run() -> None:
        try:
            work()
        except Exception as exc:  # the test counts them
            errors.append(repr(exc))

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


@mock_aws
def test_overlapping_receives_move_each_spent_message_to_the_dlq_once_and_hide_none() -> None:
    serialize_queues()
    sqs = _client()
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 2}
    queue = sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": json.dumps(policy)})
    url = queue["QueueUrl"]
    for first in range(0, 200, 10):
        entries = [{"Id": str(i), "MessageBody": str(first + i)} for i in range(10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def poll() -> None:
        client = _client()
        for _ in range(40):
            client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)

    assert _at_once(poll, threads=8) == []
    assert _depth(sqs, url) == 0
    assert _depth(sqs, dlq) == 200
    bodies: list[str] = []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in got]
    assert sorted(bodies, key=int) == [str(i) for i in range(200)]


@mock_aws
def test_overlapping_sends_receives_and_deletes_deliver_each_message_once() -> None:
    serialize_queues()
    sqs = _client()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sent = 600
    deleted: list[str] = []
    sender = threading.Lock()  # the first thread to take it sends; the others consume
    all_sent = threading.Event()

    def send_or_consume() -> None:
        client = _client()
        if sender.acquire(blocking=False):
            for i in range(sent):
                client.send_message(QueueUrl=url, MessageBody=str(i))
            all_sent.set()
            return
        quiet = 0
        # Until the queue has stayed empty a while after the last send (counted from then: a
        # slow sender on a busy machine had the consumers give up half-way).
        while quiet < 20:
            got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
            quiet = 0 if got.get("Messages") or not all_sent.is_set() else quiet + 1
            for message in got.get("Messages", []):
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                deleted.append(message["Body"])

    assert _at_once(send_or_consume, threads=4) == []
    assert sorted(deleted, key=int) == [str(i) for i in range(sent)]
    assert _depth(sqs, url) == 0


def test_a_long_poll_waits_outside_the_lock_and_gets_a_message_sent_meanwhile() -> None:
    serialize_queues()
    with mock_aws():
        sqs = _client()
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        answers: list[list[str]] = []

        def long_poll() -> None:
            got = _client().receive_message(QueueUrl=url, WaitTimeSeconds=20)
            answers.append([m["Body"] for m in got.get("Messages", [])])

        waiting = threading.Thread(target=long_poll)
        waiting.start()
        time.sleep(0.3)  # the poll is waiting; a send must not queue behind it
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        sent = time.monotonic()
        waiting.join(timeout=20)

        assert answers == [["hello"]]
        assert time.monotonic() - sent < 10  # woken by the send, not at the end of its wait


# A long poll sleeps until its queue changes or one of its messages becomes visible: an idle
# queue costs nothing while it waits, and a message is still answered as soon as it can be.
# The bounds below are far from both the expected (~1 s) and the failure (20 s, the whole
# wait), so a busy machine does not trip them.


def _original_receive() -> Callable[..., Any]:
    from moto.sqs.models import SQSBackend

    receive: Callable[..., Any] = SQSBackend.receive_message
    return getattr(receive, "__wrapped__", receive)


def test_a_long_poll_on_an_idle_queue_looks_at_it_at_its_start_and_end_only() -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    passes: list[float] = []
    receive = _original_receive()

    def counted(*args: Any) -> Any:
        passes.append(time.monotonic())
        return receive(*args)

    poll = _receive_in_passes(counted)
    with mock_aws():
        _client().create_queue(QueueName="q")
        backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        started = time.monotonic()
        got = poll(backend, "q", 10, 3, 30)

    assert got == []
    assert len(passes) == 2  # moto's own loop looks once a second: 4 passes
    assert passes[-1] - started >= 3


def _poll_in_background(url: str, wait_s: int) -> tuple[threading.Thread, list[float]]:
    """A long poll on a thread; when it got a message."""
    got: list[float] = []

    def long_poll() -> None:
        if _client().receive_message(QueueUrl=url, WaitTimeSeconds=wait_s).get("Messages"):
            got.append(time.monotonic())

    thread = threading.Thread(target=long_poll)
    thread.start()
    return thread, got


def test_a_waiting_poll_gets_a_message_when_its_visibility_timeout_ends() -> None:
    serialize_queues()
    with mock_aws():
        sqs = _client()
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=1).get("Messages")
        hidden = time.monotonic()
        waiting, got = _poll_in_background(url, wait_s=20)
        waiting.join(timeout=25)

        assert got
        assert 0.5 < got[0] - hidden < 10


def test_a_waiting_poll_gets_a_message_made_visible_sooner() -> None:
    serialize_queues()
    with mock_aws():
        sqs = _client()
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        message = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0]
        waiting, got = _poll_in_background(url, wait_s=20)
        time.sleep(0.3)  # the poll waits for the message's 60 s (its own 20 s)
        released = time.monotonic()
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1
        )
        waiting.join(timeout=25)

        assert got
        assert got[0] - released < 10


def test_a_message_another_poll_took_comes_back_to_the_waiting_one() -> None:
    serialize_queues()
    with mock_aws():
        sqs = _client()
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
        first, got_first = _poll_in_background(url, wait_s=20)
        second, got_second = _poll_in_background(url, wait_s=20)
        time.sleep(0.3)  # both wait on the empty queue
        sqs.send_message(QueueUrl=url, MessageBody="hello")  # one takes it, hidden for 1 s
        first.join(timeout=25)
        second.join(timeout=25)

        got = sorted(got_first + got_second)
        assert len(got) == 2  # the other poll got it too, once it showed again
        assert got[1] - got[0] < 10


def test_a_connection_stays_open_across_requests_even_one_whose_body_is_left_unread() -> None:
    from moto.server import ThreadedMotoServer

    from brief_local.motoserver import prepare

    prepare()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        connection = http.client.HTTPConnection(host, port, timeout=10)
        auth = {"Authorization": SIGNED}
        answers = []
        for method, path, body in (
            ("PUT", "/kept-open", b""),
            ("PUT", "/kept-open/key", b"hello"),
            ("GET", "/", b"a body ListBuckets has no use for"),
            ("GET", "/kept-open/key", b""),
        ):
            connection.request(method, path, body=body, headers=auth)
            answer = connection.getresponse()
            answers.append((answer.status, answer.getheader("Connection"), answer.read()))
        assert [(status, closing) for status, closing, _ in answers] == [(200, None)] * 4
        assert answers[-1][2] == b"hello"
        assert connection.sock is not None  # one connection served all four
        connection.close()
    finally:
        server.stop()


def test_the_request_counter_keeps_an_hour_by_the_second_and_answers_its_path() -> None:
    from brief_local.motoserver import COUNTS_PATH, Counted

    counted = Counted(lambda environ, start_response: [b"moto"])
    now = int(time.time())
    counted.by_second.update({now - 4000: 7, now - 10: 3})
    assert counted({"PATH_INFO": "/bucket/key"}, lambda *_: None) == [b"moto"]
    assert now - 4000 not in counted.by_second  # more than an hour ago
    assert counted.by_second[now - 10] == 3
    assert sum(counted.by_second.values()) == 4
    (body,) = counted({"PATH_INFO": COUNTS_PATH}, lambda *_: None)
    assert json.loads(body)["by_second"][str(now - 10)] == 3


@mock_aws
def test_of_writers_racing_to_create_one_key_exactly_one_wins(monkeypatch: Any) -> None:
    from moto.s3.models import S3Backend

    atomic_conditional_writes()
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="race")
    look = S3Backend.get_object

    def slow_look(*args: Any, **kwargs: Any) -> Any:
        found = look(*args, **kwargs)
        time.sleep(0.02)  # widens moto's check-then-store, as a loaded machine does
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_look)
    outcomes: list[str] = []

    def create() -> None:
        client = boto3.client("s3", region_name="us-east-1")
        try:
            client.put_object(Bucket="race", Key="levels/2/plan.json", Body=b"{}", IfNoneMatch="*")
        except client.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
        else:
            outcomes.append("written")

    assert _at_once(create, threads=6) == []
    assert sorted(outcomes) == ["PreconditionFailed"] * 5 + ["written"]


def _open_entries(count: int) -> Any:
    """An S3 client, and a bucket "listing" of `count` entries under `open/` (as the sweeper's)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="listing")
    for i in range(count):
        s3.put_object(Bucket="listing", Key=f"open/{i:04d}", Body=b"")
    return s3


@mock_aws
def test_a_walk_of_a_bucket_while_keys_are_deleted_walks_without_failing(monkeypatch: Any) -> None:
    from moto.s3.utils import _VersionedKeyStore

    steady_listings()
    _open_entries(40)
    snapshot = _VersionedKeyStore._self_iterable

    def copy_then_delete(store: Any) -> dict[str, Any]:
        copied = snapshot(store)
        if copied:  # a delete lands between the copy and the walk
            dict.pop(store, next(iter(copied)), None)
        return copied

    monkeypatch.setattr(_VersionedKeyStore, "_self_iterable", copy_then_delete)
    walked = list(_bucket("listing").keys.items())  # as moto's listings of versions walk it
    assert len(walked) == 40  # what the copy held


def _bucket(name: str) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(name)


@mock_aws
def test_an_indexed_listing_lists_what_motos_own_does_after_every_kind_of_change() -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import S3Backend, s3_backends

    indexed_listings()
    s3 = boto3.client("s3", region_name="us-east-1")
    rng = random.Random(7)
    parts = ["jobs", "open", "a", "ab", "a-b", "é", "cache", "x/y", ""]
    for bucket, versioned in (("plain", False), ("versioned", True)):
        s3.create_bucket(Bucket=bucket)
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        names = sorted(
            {"/".join(rng.choices(parts, k=rng.randint(1, 4))) or "k" for _ in range(300)}
        )
        for name in names:
            s3.put_object(Bucket=bucket, Key=name, Body=b"1")
        for name in rng.sample(names, 60):  # overwritten
            s3.put_object(Bucket=bucket, Key=name, Body=b"2")
        for name in rng.sample(names, 40):  # deleted one by one
            s3.delete_object(Bucket=bucket, Key=name)
        gone = rng.sample(names, 30)
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone]})
        for name in rng.sample(gone, 10):  # and back
            s3.put_object(Bucket=bucket, Key=name, Body=b"3")
        s3.put_object(Bucket=bucket, Key="copy/from", Body=b"4")
        s3.copy_object(
            Bucket=bucket, Key="copy/to", CopySource={"Bucket": bucket, "Key": "copy/from"}
        )

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        listed = _bucket(bucket)
        moto_own = S3Backend.list_objects.moto  # type: ignore[attr-defined]
        prefixes = ["", "a", "a/", "ab", "jobs/", "é", "x/y/", "zzz", *rng.sample(names, 20)]
        for prefix in prefixes:
            for delimiter in (None, "/", "-"):
                for max_keys in (None, 1, 7, 1000):
                    ours = S3Backend.list_objects(
                        backend, listed, prefix, delimiter, None, max_keys
                    )
                    theirs = moto_own(backend, listed, prefix, delimiter, None, max_keys)
                    assert [k.name for k in ours[0]] == [k.name for k in theirs[0]], prefix
                    assert list(ours[1]) == list(theirs[1])
                    assert ours[2] == theirs[2]
        # And through the API, paging with continuation tokens.
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="a", PaginationConfig={"PageSize": 9}
        )
        got = [c["Key"] for page in pages for c in page.get("Contents", [])]
        assert got == [k.name for k in moto_own(backend, listed, "a", None, None, None)[0]]


@mock_aws
def test_a_listing_of_a_prefix_does_not_walk_the_bucket(monkeypatch: Any) -> None:
    from moto.s3.utils import _VersionedKeyStore

    indexed_listings()
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="big")
    for i in range(50):
        s3.put_object(Bucket="big", Key=f"jobs/{i:03d}/request.json", Body=b"")

    def walked(store: Any) -> dict[str, Any]:
        raise AssertionError("the listing walked the whole bucket")

    with monkeypatch.context() as patched:  # moto's own reset walks it, after the test
        patched.setattr(_VersionedKeyStore, "_self_iterable", walked)
        listed = s3.list_objects_v2(Bucket="big", Prefix="jobs/007/")
    assert [c["Key"] for c in listed["Contents"]] == ["jobs/007/request.json"]


@mock_aws
def test_a_key_deleted_after_a_listing_took_its_names_is_left_out(monkeypatch: Any) -> None:
    import brief_local.motoserver as motoserver

    indexed_listings()
    s3 = _open_entries(40)
    names_under = motoserver._names_under

    def then_delete(store: Any, prefix: str) -> list[str]:
        names = names_under(store, prefix)
        store.pop(names[0])  # the sweeper drops an open/ entry meanwhile
        return names

    monkeypatch.setattr(motoserver, "_names_under", then_delete)
    listed = s3.list_objects_v2(Bucket="listing", Prefix="open/")
    assert [c["Key"] for c in listed["Contents"]] == [f"open/{i:04d}" for i in range(1, 40)]


def test_the_listing_benchmark_lists_each_job_both_ways(capsys: Any) -> None:
    from bench import listing

    assert listing.main(["20"]) == 0  # it checks each listing found the job's 25 keys
    printed = capsys.readouterr().out
    assert printed.startswith("500 keys; one job's 25 listed 200 times:")
    assert "moto's own" in printed
    assert "indexed" in printed
