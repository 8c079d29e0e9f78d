"""`brief local --data-dir DIR`: the local bucket kept on disk across restarts.

moto keeps everything in memory. With a data directory, every object of the stack's bucket is
mirrored to `DIR/objects/<key>` (new and changed objects every few seconds, and all of them
when the stack stops) and put back into the bucket when the stack starts again: reports, jobs'
records and events, "my jobs" and uploads survive a restart. Queue messages do not: a job that
was running when the stack stopped is ended by the sweeper, with the reason, after restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

SYNC_EVERY_S = 5.0


class BucketMirror:
    """One bucket, mirrored to a directory and restored from it."""

    def __init__(self, s3: Any, bucket: str, directory: Path) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.root = directory.resolve() / "objects"
        self._etags: dict[str, str] = {}  # what the directory holds, by key

    async def restore(self) -> int:
        """Put every mirrored object back into the bucket; how many."""
        restored = 0
        # A `.partial` file is a write the last stop did not finish: the object before it
        # (if any) is what the directory holds.
        files = (p for p in self.root.rglob("*") if p.is_file() and p.suffix != ".partial")
        for path in sorted(files):
            key = path.relative_to(self.root).as_posix()
            body = await asyncio.to_thread(path.read_bytes)
            answer = await self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
            self._etags[key] = answer["ETag"]
            restored += 1
        return restored

    async def sync(self) -> int:
        """Write the objects that are new or changed since the last sync, and drop the files
        of objects that are gone; how many were written."""
        listed: dict[str, str] = {}
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket):
            for item in page.get("Contents", []):
                listed[item["Key"]] = item["ETag"]
        written = 0
        for key, etag in listed.items():
            if self._etags.get(key) == etag:
                continue
            path = self._path(key)
            if path is None:
                continue
            answer = await self._s3.get_object(Bucket=self._bucket, Key=key)
            body = await answer["Body"].read()
            await asyncio.to_thread(_write, path, body)
            self._etags[key] = etag
            written += 1
        for key in set(self._etags) - set(listed):
            path = self._path(key)
            if path is not None:
                path.unlink(missing_ok=True)
            del self._etags[key]
        return written

    async def run(self, every_s: float = SYNC_EVERY_S) -> None:
        """Sync every `every_s` seconds until cancelled (a failed sync is logged and retried)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sync()
            except Exception:  # the next round tries again; the final sync at stop too
                log.exception("could not mirror the bucket to %s", self.root)

    def _path(self, key: str) -> Path | None:
        """Where `key` is kept; None for a key that would leave the directory."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
            log.warning("not mirroring an object whose key leaves the directory: %r", key)
            return None
        return self.root.joinpath(*parts)


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(body)
    partial.replace(path)  # a reader never sees half an object
