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

`prepare()` does both; `python -m brief_local.motoserver` takes moto.server's arguments.
"""

from __future__ import annotations

import functools
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


def _locked(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def under_lock(*args: Any, **kwargs: Any) -> Any:
        with _QUEUES:
            return call(*args, **kwargs)

    return under_lock


def _receive_in_passes(receive: Callable[..., Any]) -> Callable[..., Any]:
    """moto's receive, one pass at a time under the lock (a wait of 0 is a single pass);
    between passes it waits, without the lock, for a message to arrive, as moto's own loop
    does, until the request's wait time is spent."""

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
            left = end - time.monotonic()
            if got or left <= 0:
                return got
            backend.get_queue(queue_name).wait_for_messages(min(1.0, left))

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
