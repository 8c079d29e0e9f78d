"""moto's server, made fit for many pollers: no directory scan on every request, and queues
that do not lose or hide messages when their calls overlap.

moto's server finds each request's backend by asking whether the service's name is one of
its modules, and `moto.backends.list_of_moto_modules` answers by listing moto's package
directory and stat-ing each of its ~180 entries — twice a request. Profiled on this machine,
that was 45% of the server's time for an S3 GetObject. The list cannot change while the
process runs, so it is read once.

moto's server answers each request on a thread of its own, and its SQS backend changes a
queue's message list without a lock. Two receives that overlap on a message due for the
dead-letter queue both move it; the second raises (a 500) after it has already hidden the
messages it picked, for the whole visibility timeout. A delete rebuilds the list from a copy,
so a message sent meanwhile can vanish. `serialize_queues` runs each SQS call's work under one
lock; a long poll waits outside it, as SQS's does, between passes.

moto's long poll also wakes every second to look again, for messages that show up with time
rather than with a send (a visibility timeout or a delay that ends). Here a poll sleeps until
a call changes its queue (a send, delete, visibility change or purge wakes the queue's polls)
or until the next moment one of the queue's messages becomes visible, whichever comes first:
a message is answered as soon as it can be, and a poll on an idle queue wakes only when its
wait time is spent.

Three costs grew with load (py-spy on the server during `make bench`'s 100 jobs):
- werkzeug's server answers every request with `Connection: close`, so each call paid a TCP
  connect and a new thread on both sides. `keep_connections` reads each request's body
  through a counter, drains what the application left unread, and keeps the connection open
  (a chunked request body still closes it), as HTTP/1.1 expects.
- every message a receive returns looked up the queue's retention period through
  `get_queue_attributes`, which counts the queue's messages three ways: a receive cost the
  square of the messages in flight. `fast_queues` reads the one attribute, and tells the
  time from `time.time()` rather than by building two datetimes per message looked at.
- werkzeug logged each request (the process's log goes nowhere).

moto's conditional PutObject checks its condition and stores the object in separate steps;
`atomic_conditional_writes` makes it one, as S3's is, so two writers of one write-once key
cannot both win. A listing looked each key up again after copying the list, and failed on
one deleted meanwhile; `steady_listings` lists from the copy. And a listing walked every key
of the bucket, however small its prefix: `indexed_listings` keeps each bucket's names in
order, so a listing costs what it lists.

`prepare()` does all of it. `python -m brief_local.motoserver -H HOST -p PORT` runs the server
and counts the requests it answers each second, for `make bench`'s peak calls per second:
`GET /_brief/requests` answers the last hour's as JSON (`{"by_second": {"<unix second>": n}}`).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import functools
import io
import json
import logging
import math
import os
import selectors
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable
from typing import Any


def speed_up() -> None:
    """Read moto's module list once per process (idempotent; before the server starts)."""
    import moto.backends as backends

    listing: Callable[[], Iterable[str]] = backends.list_of_moto_modules
    if getattr(listing, "read_once", False):
        return
    modules = tuple(listing())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    list_of_moto_modules.read_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules


_QUEUES = threading.RLock()  # re-entrant: the batch calls make their single calls
_WRITES = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)


def _queue_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The queue a backend call names: its first argument after the backend itself."""
    name: str = kwargs["queue_name"] if "queue_name" in kwargs else args[1]
    return name


def _wake(backend: Any, queue_name: str) -> None:
    """Wake the queue's waiting polls, to look at it again (nothing if it has gone)."""
    queue = backend.queues.get(queue_name)
    if queue is not None:
        with queue._messages_lock:
            queue._messages_lock.notify_all()


def _locked(call: Callable[..., Any]) -> Callable[..., Any]:
    """The call under the lock; then the queue's polls look again (a message may be visible
    sooner, or a FIFO group free)."""

    @functools.wraps(call)
    def under_lock(*args: Any, **kwargs: Any) -> Any:
        with _QUEUES:
            try:
                return call(*args, **kwargs)
            finally:
                _wake(args[0], _queue_name(args, kwargs))

    return under_lock


def _until_visible(queue: Any) -> float:
    """Seconds until the first of the queue's hidden or delayed messages becomes visible
    (inf if none will). Only a call can make one visible sooner, and every call but a
    receive (which only hides messages) wakes the queue's polls to look again."""
    from moto.core.utils import unix_time_millis

    now_ms = unix_time_millis()
    times = (float(max(m.visible_at, m.delayed_until)) for m in queue._messages)
    first = min((t for t in times if t >= now_ms), default=None)
    if first is None:
        return math.inf
    return (first - now_ms) / 1000 + 0.002  # moto's `visible` is strictly later than visible_at


def _receive_in_passes(receive: Callable[..., Any]) -> Callable[..., Any]:
    """moto's receive, one pass at a time under the lock (a wait of 0 is a single pass);
    between passes it waits, without the lock, until a call changes the queue or one of its
    messages becomes visible, as long as the request's wait time lasts."""

    @functools.wraps(receive)
    def receive_message(
        backend: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        attribute_names: list[str] | None = None,
    ) -> Any:
        end = time.monotonic() + wait_seconds_timeout
        while True:
            with _QUEUES:
                got = receive(backend, queue_name, count, 0, visibility_timeout, attribute_names)
                queue = backend.get_queue(queue_name)
                changed = queue._messages_lock
                left = end - time.monotonic()
                if got or left <= 0:
                    return got
                pause = min(left, _until_visible(queue))
                # Taken before the queue lock is let go, and let go only by the wait: a call
                # that changes the queue from now on notifies this poll, never before it waits.
                changed.acquire()
            try:
                changed.wait(pause)
            finally:
                changed.release()

    return receive_message


def serialize_queues() -> None:
    """Run moto's SQS calls one at a time (idempotent; before the server starts)."""
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.receive_message, "serialized", False):
        return
    for name in _WRITES:
        setattr(SQSBackend, name, _locked(getattr(SQSBackend, name)))
    receive = _receive_in_passes(SQSBackend.receive_message)
    receive.serialized = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive  # type: ignore[method-assign]


class _Body(io.RawIOBase):
    """A request's body as the application reads it: at most its Content-Length, counted, so
    whatever it leaves can be drained before the connection's next request."""

    def __init__(self, stream: Any, length: int) -> None:
        super().__init__()
        self._stream = stream
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.left)
        data = self._stream.read(size) if size else b""
        buffer[: len(data)] = data
        self.left = self.left - len(data) if data else 0  # an early end of input ends it
        return len(data)

    def drain(self) -> None:
        while self.left and self.readinto(bytearray(min(self.left, 1 << 16))):
            pass


_KEEPING = threading.local()  # the request on this thread keeps its connection open


class _Selector(selectors.DefaultSelector):
    """werkzeug's selector for reading what a request left unread after its response: it
    reads until the client goes quiet, which on an open connection is the next request.
    There `_Body.drain` has read exactly what was left, so this one finds nothing."""

    def select(self, timeout: float | None = None) -> list[Any]:
        if getattr(_KEEPING, "on", False):
            return []
        return super().select(timeout)


def keep_connections() -> None:
    """Let moto's request handler keep HTTP/1.1 connections open (idempotent)."""
    import werkzeug.serving
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    if getattr(MotoRequestHandler, "keeps_connections", False):
        return
    shim = types.SimpleNamespace(DefaultSelector=_Selector, EVENT_READ=selectors.EVENT_READ)
    setattr(werkzeug.serving, "selectors", shim)  # noqa: B010 - only its drain looks there
    make_environ = MotoRequestHandler.make_environ
    run_wsgi = MotoRequestHandler.run_wsgi
    send_header = MotoRequestHandler.send_header

    def counted_environ(handler: Any) -> dict[str, Any]:
        environ: dict[str, Any] = make_environ(handler)
        length = environ.get("CONTENT_LENGTH") or "0"
        if environ.get("wsgi.input_terminated") or not length.isdigit():
            handler.brief_body = None  # chunked, or a length we cannot count: close after
        else:
            handler.brief_body = environ["wsgi.input"] = _Body(environ["wsgi.input"], int(length))
            _KEEPING.on = True
        return environ

    def drained_run(handler: Any) -> None:
        handler.brief_body = None
        _KEEPING.on = False
        try:
            run_wsgi(handler)
        finally:
            _KEEPING.on = False
        if handler.brief_body is None:
            handler.close_connection = True
        else:
            handler.brief_body.drain()

    def open_header(handler: Any, keyword: str, value: str) -> None:
        closing = keyword.lower() == "connection" and value.lower() == "close"
        if closing and getattr(handler, "brief_body", None) is not None:
            return  # werkzeug closes every connection; this one's input is accounted for
        send_header(handler, keyword, value)

    for name, method in (
        ("make_environ", counted_environ),
        ("run_wsgi", drained_run),
        ("send_header", open_header),
    ):
        setattr(MotoRequestHandler, name, method)
    # Headers and body go out as two writes: on an open connection, Nagle's algorithm would
    # hold the body back for the client's delayed acknowledgement (tens of milliseconds).
    MotoRequestHandler.disable_nagle_algorithm = True
    MotoRequestHandler.keeps_connections = True  # type: ignore[attr-defined]


def _now_s(dt: Any = None) -> float:
    """moto's `unix_time`, from the clock when no datetime is given."""
    if dt is None:
        return time.time()
    from moto.core.utils import unix_time

    return unix_time(dt)


def _now_ms(dt: Any = None) -> float:
    return _now_s(dt) * 1000.0


def fast_queues() -> None:
    """SQS receives in time linear in the queue's messages (idempotent)."""
    import moto.sqs.models as sqs

    if getattr(sqs.SQSBackend.is_message_valid_based_on_retention_period, "fast", False):
        return

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        period = float(backend.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    retained.fast = True  # type: ignore[attr-defined]
    setattr(sqs.SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010
    for name, clock in (("unix_time", _now_s), ("unix_time_millis", _now_ms)):
        setattr(sqs, name, clock)


_CONDITIONAL = threading.Lock()


def atomic_conditional_writes() -> None:
    """Make a conditional PutObject (`If-None-Match`, `If-Match`) one step, as S3's is
    (idempotent; before the server starts).

    moto checks the condition, then parses the body and stores the object: two threads that
    write the same new key at once can both pass the check and both get a 200. Brief's
    write-once keys (a deep job's plan, the report, a fan-in's claim) rely on exactly one of
    them winning; a chaos run saw a level plan written twice this way.
    """
    from moto.s3.responses import S3Response

    put = S3Response.put_object
    if getattr(put, "atomic", False):
        return

    @functools.wraps(put)
    def put_object(response: Any) -> Any:
        headers = response.headers
        if headers.get("If-None-Match") or headers.get("If-Match"):
            with _CONDITIONAL:
                return put(response)
        return put(response)

    put_object.atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign,assignment]


def steady_listings() -> None:
    """List a bucket from one snapshot of its keys (idempotent; before the server starts).

    moto copies the bucket's keys before a listing walks them, then looks each one up again
    in the live bucket: a key deleted meanwhile (the sweeper drops `open/` entries while
    others list) raised KeyError, a 500 that botocore retried. S3 lists what it lists.
    """
    from moto.s3.utils import _VersionedKeyStore

    if getattr(_VersionedKeyStore._iteritems, "steady", False):
        return

    def iteritems(store: Any) -> Iterable[tuple[str, Any]]:
        for key, versions in store._self_iterable().items():
            if versions:
                yield key, versions[-1]

    def itervalues(store: Any) -> Iterable[Any]:
        for _, value in iteritems(store):
            yield value

    def iterlists(store: Any) -> Iterable[tuple[str, list[Any]]]:
        yield from store._self_iterable().items()

    iteritems.steady = True  # type: ignore[attr-defined]
    for names, replacement in (
        (("_iteritems", "items", "iteritems"), iteritems),
        (("_itervalues", "values", "itervalues"), itervalues),
        (("_iterlists", "lists", "iterlists"), iterlists),
    ):
        for name in names:
            setattr(_VersionedKeyStore, name, replacement)


_NAMES = threading.RLock()  # the key-name indexes of every bucket (their changes are brief)


def _names_under(store: Any, prefix: str) -> list[str]:
    """The names in a key store that start with `prefix`, in order, as they are now: from the
    store's index of its names, made on the first listing and kept in step by the store's
    own changes from then on."""
    with _NAMES:
        names: list[str] | None = store.__dict__.get("brief_names")
        if names is None:
            names = store.brief_names = sorted(dict.keys(store))
        end = start = bisect.bisect_left(names, prefix)
        while end < len(names) and names[end].startswith(prefix):
            end += 1
        return names[start:end]


def _tracked(change: Callable[..., Any], *, removes: bool) -> Callable[..., Any]:
    """A change to a key store that keeps its index of names in step: a name that appears
    goes in where it sorts, one that goes comes out."""

    @functools.wraps(change)
    def tracked(store: Any, key: str, *args: Any) -> Any:
        with _NAMES:
            had = dict.__contains__(store, key)
            result = change(store, key, *args)
            names = store.__dict__.get("brief_names")
            if names is not None and had != dict.__contains__(store, key):
                at = bisect.bisect_left(names, key)
                if removes:
                    if at < len(names) and names[at] == key:
                        del names[at]
                else:
                    names.insert(at, key)
            return result

    return tracked


def indexed_listings() -> None:
    """List a prefix in time that grows with what it lists, not with the bucket (idempotent;
    before the server starts).

    moto walks every key of the bucket for each listing, and Brief lists small prefixes of a
    big bucket all the time (a job's keys, the sweeper's `open/`): one job's 25 keys took 5 ms
    of CPU among the 25,000 a 1,000-job batch leaves (`python -m bench.listing`), 0.02 ms
    indexed. Each bucket's key store keeps its names in order; a listing takes the names under
    its prefix from there (at one moment, as `steady_listings` does) and looks each up.
    """
    from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket, S3Backend
    from moto.s3.utils import _VersionedKeyStore

    if getattr(S3Backend.list_objects, "indexed", False):
        return
    for name, removes in (("__setitem__", False), ("setlist", False), ("pop", True)):
        setattr(
            _VersionedKeyStore, name, _tracked(getattr(_VersionedKeyStore, name), removes=removes)
        )
    whole = S3Backend.list_objects

    def list_objects(
        backend: Any,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        marker: str | None,
        max_keys: int | None,
    ) -> tuple[list[Any], list[str], bool, str | None]:
        store = bucket.keys
        if isinstance(bucket, FakeTableStorageBucket) or not isinstance(store, _VersionedKeyStore):
            return whole(backend, bucket, prefix, delimiter, marker, max_keys)  # type: ignore[return-value]
        prefix = prefix or ""
        keys: list[Any] = []
        folders: set[str] = set()
        for name in _names_under(store, prefix):
            versions = dict.get(store, name)  # none: deleted since the names were taken
            if not versions:
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                folders.add(f"{prefix}{rest.split(delimiter)[0]}{delimiter}")
            elif not isinstance(versions[-1], FakeDeleteMarker):
                keys.append(versions[-1])
        if marker:
            keys = backend._get_results_from_token(
                keys, backend._pagination_tokens.get(marker) or marker
            )
        if max_keys is None:
            return keys, sorted(folders), False, None
        keys, truncated, next_marker = backend._truncate_result(keys, max_keys)
        return keys, sorted(folders), truncated, next_marker

    list_objects.indexed = True  # type: ignore[attr-defined]
    list_objects.moto = whole  # type: ignore[attr-defined]
    S3Backend.list_objects = list_objects  # type: ignore[method-assign,assignment]


def prepare() -> None:
    """Everything this module does to moto, once per process, before a server starts."""
    speed_up()
    serialize_queues()
    atomic_conditional_writes()
    steady_listings()
    indexed_listings()
    fast_queues()
    keep_connections()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # it logs every request


COUNTS_PATH = "/_brief/requests"
COUNTS_KEPT_S = 3600  # a `brief local` left running keeps an hour of counts, not all


class Counted:
    """A WSGI application, with the requests it answers counted by the second; `COUNTS_PATH`
    answers the counts instead of reaching the application."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.by_second: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with self._lock:
                counts = {str(second): n for second, n in sorted(self.by_second.items())}
            body = json.dumps({"by_second": counts}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        second = int(time.time())
        with self._lock:
            if second not in self.by_second:
                for old in [s for s in self.by_second if s <= second - COUNTS_KEPT_S]:
                    del self.by_second[old]
            self.by_second[second] += 1
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    """Run moto's server on -H/--host and -p/--port, its requests counted (`Counted`)."""
    parser = argparse.ArgumentParser(prog="python -m brief_local.motoserver")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    prepare()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    # As moto's own main: its port in the environment, debug on, and a clean exit on a signal.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    dispatcher = DomainDispatcherApplication(create_backend_app)
    dispatcher.debug = True  # type: ignore[attr-defined]
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: sys.exit(0))
    app = Counted(dispatcher)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
