"""In-memory adapters: the same behaviour as S3 and SQS, for functional tests and tools.

Like httpx's MockTransport, they live beside the real adapters so tests stay plain
functions; they keep S3's write-once and listing-order semantics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel

from brief.messages import QUEUE_ROLES
from brief.ports import QueueRole


class MemoryBlobStore:
    """A dict with S3's conditional-create, overwrite and sorted-listing behaviour."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.versions: dict[str, int] = {}  # the ETag of `swap`: a count of writes

    async def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        """Create `key` unless present (like `If-None-Match: *`)."""
        await asyncio.sleep(0)  # a real store yields; so must the fake, to expose races
        if key in self.objects:
            return False
        self._write(key, body, content_type)
        return True

    def _write(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body
        self.content_types[key] = content_type
        self.versions[key] = self.versions.get(key, 0) + 1

    async def replace(
        self, key: str, body: bytes, *, content_type: str = "application/json"
    ) -> None:
        """Write `key` whether or not it exists."""
        await asyncio.sleep(0)
        self._write(key, body, content_type)

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None."""
        await asyncio.sleep(0)
        return self.objects.get(key)

    async def get_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The stored bytes and their version, or None."""
        await asyncio.sleep(0)
        if key not in self.objects:
            return None
        return self.objects[key], str(self.versions[key])

    async def swap(
        self, key: str, body: bytes, *, etag: str | None, content_type: str = "application/json"
    ) -> bool:
        """Write `key` if its version is still `etag` (None: if absent), like `If-Match`."""
        await asyncio.sleep(0)
        current = str(self.versions[key]) if key in self.objects else None
        if current != etag:
            return False
        self._write(key, body, content_type)
        return True

    async def list(self, prefix: str, *, after: str | None = None) -> list[str]:
        """Keys under `prefix`, sorted, after `after` when given."""
        await asyncio.sleep(0)
        return sorted(k for k in self.objects if k.startswith(prefix) and (not after or k > after))

    async def delete(self, key: str) -> None:
        """Remove `key` if present."""
        await asyncio.sleep(0)
        self.objects.pop(key, None)
        self.content_types.pop(key, None)


class MemoryTaskQueue:
    """Records every message sent, per queue role, in order."""

    def __init__(self) -> None:
        self.sent: dict[QueueRole, list[BaseModel]] = {role: [] for role in QUEUE_ROLES}

    async def send(self, role: QueueRole, messages: Sequence[BaseModel]) -> None:
        """Append the messages to the role's list."""
        await asyncio.sleep(0)
        self.sent[role].extend(messages)

    def take(self, role: QueueRole) -> list[BaseModel]:
        """Remove and return everything sent to `role` so far (a consumer's receive)."""
        taken, self.sent[role] = self.sent[role], []
        return taken
