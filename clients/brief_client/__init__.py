"""Brief's Python client: the HTTP API as typed calls, synchronous (`Brief`) or async
(`AsyncBrief`), built on httpx.

    from brief_client import Brief

    with Brief("http://127.0.0.1:8000") as brief:
        report = brief.research("How do honeybees pick a nest site?", ["https://..."])
        print(report.markdown)

Answers are Brief's own models (`JobView`, `Report`, `BatchView`); failures are one tree of
exceptions (`brief_client.errors`) that carry the API's problem+json detail. `events()`
follows a job live over server-sent events and resumes after the last event it saw when a
connection drops.
"""

from typing import TYPE_CHECKING

from brief_client.errors import (
    ApiError,
    BadRequest,
    BriefError,
    Conflict,
    Invalid,
    JobCancelled,
    JobFailed,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    Unreachable,
)
from brief_client.events import StreamedEvent

if TYPE_CHECKING:
    from brief_client.aio import AsyncBrief
    from brief_client.sync import Brief

__all__ = [
    "ApiError",
    "AsyncBrief",
    "BadRequest",
    "Brief",
    "BriefError",
    "Conflict",
    "Invalid",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "RateLimited",
    "ServerError",
    "StreamedEvent",
    "TooLarge",
    "Unauthorized",
    "Unreachable",
]


def __getattr__(name: str) -> object:
    # The clients load httpx when first named: `import brief_client` stays cheap.
    if name == "Brief":
        from brief_client.sync import Brief

        return Brief
    if name == "AsyncBrief":
        from brief_client.aio import AsyncBrief

        return AsyncBrief
    raise AttributeError(name)
