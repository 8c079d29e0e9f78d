"""Functional fixtures: the pipeline's stages on in-memory fakes and an httpx MockTransport."""

from __future__ import annotations

import pytest

from brief.adapters.memory import MemoryBlobStore, MemoryTaskQueue

from .world import World


@pytest.fixture
def world() -> World:
    """A fresh in-memory world for one test."""
    return World(MemoryBlobStore(), MemoryTaskQueue(), {})
