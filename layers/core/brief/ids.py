"""Identifiers that end up inside S3 keys, so they are validated where they enter."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Annotated, TypeGuard

from pydantic import StringConstraints

ID_PATTERN = "[0-9a-f]{32}"
"""How every id is spelled (a job's, a batch's): 128 bits in hex, safe to put in a key."""

JobId = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
"""128 random bits, hex: unguessable, and safe to put in a key."""


_ID = re.compile(ID_PATTERN)


def is_id(value: object) -> TypeGuard[str]:
    """Whether `value` is spelled as a job's or a batch's id (for bodies that failed to parse)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def new_job_id() -> str:
    """A fresh job id; unguessable because a job id is all a caller needs to read a job."""
    return secrets.token_hex(16)


BatchId = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
"""A batch's id: 128 random bits, like a job's."""


def new_batch_id() -> str:
    """A fresh batch id; its jobs' ids derive from it, so it must be as unguessable."""
    return secrets.token_hex(16)


def batch_job_id(batch_id: str, n: int) -> str:
    """Job `n` of a batch: derived, so a redelivered submit message creates the same job."""
    return hashlib.sha256(f"{batch_id}:{n}".encode()).hexdigest()[:32]


def owner_key(owner: str) -> str:
    """An owner's identity as it can appear in a key (any characters in, hex out)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]
