"""botocore's data (service models, endpoint rules), loaded once per process, not per session.

botocore gives every session a loader of its own, and each loader parses the JSON it needs
again: ~35k objects and ~60 ms of GIL-holding parsing for S3, ~25k for SQS. In Lambda that is
once per execution environment. The local stack runs every environment as a thread of one
process, so each container's sessions (the wiring opens one per service) added another copy:
at 50 jobs the heap held ~830k objects, 466k of them the parsed models' OrderedDicts, and
every full collection, on whichever thread it ran, stopped the API's loop for 0.3 to 0.8 s.

While the local stack runs, new sessions share one loader per data path. The models are read
only after loading (one session already shares them between its clients and threads), so
sharing them between sessions changes no behaviour, only the process's memory and CPU.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.loaders
import botocore.session

_lock = threading.Lock()
_users = 0
_original: Callable[..., Any] | None = None
_loaders: dict[str | None, Any] = {}


class _SearchPaths(list[str]):
    """A loader's search paths; boto3 appends its own on every session, so once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(search_path_string: str | None = None) -> Any:
    """`botocore.loaders.create_loader`, but one loader per data path for the whole process."""
    with _lock:
        loader = _loaders.get(search_path_string)
        if loader is None:
            extra = [
                os.path.expanduser(os.path.expandvars(path))
                for path in (search_path_string or "").split(os.pathsep)
                if path
            ]
            loader = botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))
            _loaders[search_path_string] = loader
        return loader


@contextmanager
def shared() -> Iterator[None]:
    """Sessions created inside share their loaders; nested and concurrent uses are counted."""
    global _users, _original
    with _lock:
        if _users == 0:
            _original = botocore.session.create_loader
            botocore.session.create_loader = _shared_loader
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                botocore.session.create_loader = _original
                _original = None
                _loaders.clear()
