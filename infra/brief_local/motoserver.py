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

`prepare()` does all of it; `python -m brief_local.motoserver` takes moto.server's arguments.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
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


def prepare() -> None:
    """Everything this module does to moto, once per process, before a server starts."""
    speed_up()
    serialize_queues()


def main(argv: list[str] | None = None) -> None:
    """Run moto's server (same arguments as `python -m moto.server`)."""
    prepare()
    from moto.server import main as serve

    serve(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
