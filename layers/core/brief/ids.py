"""Identifiers that end up inside S3 keys, so they are validated where they enter."""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import StringConstraints

JobId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""128 random bits, hex: unguessable, and safe to put in a key."""


def new_job_id() -> str:
    """A fresh job id; unguessable because a job id is all a caller needs to read a job."""
    return secrets.token_hex(16)
