"""`TaskQueue` on SQS through aioboto3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from brief.concurrency import all_of
from brief.errors import StorageUnavailable
from brief.ports import QueueRole

_BATCH = 10  # SQS's limits for SendMessageBatch: ten messages,
_BATCH_BYTES = 256 * 1024  # and this many bytes of bodies in all


class SQSTaskQueue:
    """Sends messages in batches of ten, every batch at once; releases failed records."""

    def __init__(self, client: Any, urls: Mapping[QueueRole, str]) -> None:
        self._sqs = client
        self._urls = dict(urls)
        self._by_arn: dict[str, str] = {}

    async def release(self, source_arn: str, visibility: Sequence[tuple[str, int]]) -> None:
        """Make each (receipt handle, seconds) record visible again after its seconds."""
        url = self._url_for(source_arn)
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for i, (handle, seconds) in enumerate(visibility)
        ]
        batches = [entries[i : i + _BATCH] for i in range(0, len(entries), _BATCH)]
        try:
            await all_of(
                *(
                    self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=batch)
                    for batch in batches
                )
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"SQS visibility change failed: {exc}") from exc

    def _url_for(self, arn: str) -> str:
        """The URL of the queue an event source ARN names: one we send to, or the URL SQS
        gives every queue (its endpoint, account and name), so no call and no
        sqs:GetQueueUrl permission is needed."""
        if arn not in self._by_arn:
            parts = arn.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise StorageUnavailable(f"not an SQS queue ARN: {arn}")
            account, name = parts[4], parts[5]
            known = [u for u in self._urls.values() if u.rstrip("/").rsplit("/", 1)[-1] == name]
            endpoint = str(self._sqs.meta.endpoint_url).rstrip("/")
            self._by_arn[arn] = known[0] if known else f"{endpoint}/{account}/{name}"
        return self._by_arn[arn]

    async def send(self, role: QueueRole, messages: Sequence[BaseModel]) -> None:
        """Send every message; raises StorageUnavailable if any one was not accepted."""
        url = self._urls.get(role)
        if not url:
            raise StorageUnavailable(f"no queue URL configured for the {role} queue")
        bodies = [message.model_dump_json(exclude_none=True) for message in messages]
        await all_of(*(self._send_batch(url, batch) for batch in _batches(bodies)))

    async def _send_batch(self, url: str, batch: Sequence[str]) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
        try:
            response = await self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"SQS send failed: {exc}") from exc
        failed = response.get("Failed") or []
        if failed:
            codes = ", ".join(sorted({str(f.get("Code")) for f in failed}))
            raise StorageUnavailable(f"SQS refused {len(failed)} of {len(entries)}: {codes}")


def _batches(bodies: Sequence[str]) -> list[list[str]]:
    """The bodies in order, in batches SendMessageBatch takes (a body over the byte limit
    goes alone, for SQS to refuse by name)."""
    batches: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if not batches or len(batches[-1]) == _BATCH or size + length > _BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(body)
        size += length
    return batches
