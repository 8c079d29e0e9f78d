"""The model-output cache: content-addressed, shared by every job."""

from __future__ import annotations

import hashlib

from brief import keys
from brief.jobstore.objects import Objects
from brief.models import CachedText


class TextCache(Objects):
    """Model outputs by the digest of the model and every input: the same input never needs
    the model again."""

    async def cached_text(self, key: str) -> CachedText | None:
        """A model output stored under `key` (see `text_key`), if any."""
        return await self._get(keys.cached_text(key), CachedText)

    async def cache_text(self, key: str, cached: CachedText) -> None:
        """Remember a model output; the same input never needs the model again."""
        await self._put(keys.cached_text(key), cached)


def text_key(model: str, *parts: str) -> str:
    """The cache key of a model's output: the model (with its prompt version) and every input."""
    return digest(model, *parts)


def digest(first: str, *parts: str) -> str:
    """SHA-256 of the parts, each kept apart from the next (no two lists share a digest)."""
    hashed = hashlib.sha256(first.encode())
    for part in parts:
        hashed.update(b"\x00")
        hashed.update(part.encode())
    return hashed.hexdigest()
