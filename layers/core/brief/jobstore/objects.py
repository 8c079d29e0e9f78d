"""Typed objects over a `BlobStore`: what every part of the job store is made of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

from brief.concurrency import all_of
from brief.ports import BlobStore

M = TypeVar("M", bound=BaseModel)


class Objects:
    """Once-only writes and validated reads of pydantic models, by key."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def _put(self, key: str, model: BaseModel) -> bool:
        """Write `model` at `key` unless something is there already (False then)."""
        return await self._blobs.put(key, model.model_dump_json().encode())

    async def _get(self, key: str, model: type[M]) -> M | None:
        body = await self._blobs.get(key)
        if body is None:
            return None
        # As it was accepted: checks added for new requests since do not apply to it.
        return model.model_validate_json(body, context={"stored": True})

    async def _get_each(self, keys: Sequence[str], model: type[M]) -> list[M | None]:
        """Every key's object, read concurrently, in the order of `keys` (None: gone)."""
        return await all_of(*(self._get(k, model) for k in keys))

    async def _present(self, key: str) -> bool:
        """Whether an object (a marker) exists at `key`."""
        return await self._blobs.get(key) is not None

    async def _mark(self, key: str) -> None:
        """Write an empty marker object (overwriting: a marker carries no data)."""
        await self._blobs.put(key, b"", content_type="text/plain")
