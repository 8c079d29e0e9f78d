"""API keys from settings: a literal, or a reference to SSM Parameter Store or Secrets Manager.

    sk-...                                     the key itself (local runs, tests)
    ssm:/brief/openai-api-key                  GetParameter, WithDecryption (a SecureString)
    secretsmanager:brief/anthropic             GetSecretValue: the whole SecretString
    secretsmanager:brief/keys#anthropic        ... or one key of a JSON SecretString
    secretsmanager:arn:aws:secretsmanager:...:secret:brief/keys-AbC123#anthropic

Resolved once per container (the resolver is kept with the container's other clients), so a
warm invocation makes no call. A missing or unreadable secret is a `PermanentError` naming
the reference (never the value); throttling and outages are retryable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from brief.errors import PermanentError, RetryableError

__all__ = ["SecretError", "SecretResolver", "is_reference"]

SSM = "ssm:"
SECRETS_MANAGER = "secretsmanager:"
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyUpdates",
        "InternalServerError",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)


class SecretError(PermanentError):
    """A key reference that cannot be resolved: missing, not allowed, or malformed."""


def is_reference(value: str) -> bool:
    """Whether `value` names a secret rather than being one."""
    return value.startswith((SSM, SECRETS_MANAGER))


class SecretResolver:
    """Resolves key settings through AWS clients that `clients(service)` returns.

    `clients` is called only for a reference, with "ssm" or "secretsmanager", so a literal
    key (or no key) never builds a client.
    """

    def __init__(self, clients: Callable[[str], Awaitable[Any]]) -> None:
        self._clients = clients
        self._cache: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(self, value: str | None) -> str | None:
        """The key `value` stands for: itself if literal, else the secret's value."""
        if not value or not is_reference(value):
            return value
        if value in self._cache:
            return self._cache[value]
        lock = self._locks.setdefault(value, asyncio.Lock())
        async with lock:  # concurrent first calls make one request
            if value not in self._cache:
                self._cache[value] = await self._fetch(value)
        return self._cache[value]

    async def _fetch(self, reference: str) -> str:
        try:
            if reference.startswith(SSM):
                return await self._parameter(reference, reference[len(SSM) :])
            return await self._secret(reference, reference[len(SECRETS_MANAGER) :])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500):
                raise RetryableError(f"could not read {reference} ({code})") from exc
            raise SecretError(f"could not read {reference}: {code}") from exc
        except BotoCoreError as exc:
            raise RetryableError(f"could not read {reference} ({type(exc).__name__})") from exc

    async def _parameter(self, reference: str, name: str) -> str:
        if not name:
            raise SecretError(f"{reference} names no parameter")
        client = await self._clients("ssm")
        response = await client.get_parameter(Name=name, WithDecryption=True)
        value = response.get("Parameter", {}).get("Value")
        if not isinstance(value, str) or not value:
            raise SecretError(f"{reference} is empty")
        return value

    async def _secret(self, reference: str, spec: str) -> str:
        secret_id, _, key = spec.partition("#")
        if not secret_id:
            raise SecretError(f"{reference} names no secret")
        client = await self._clients("secretsmanager")
        response = await client.get_secret_value(SecretId=secret_id)
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise SecretError(f"{reference} has no string value")
        if not key:
            if not value:
                raise SecretError(f"{reference} is empty")
            return value
        try:
            data = json.loads(value)
        except ValueError:
            raise SecretError(f"{reference}: the secret is not JSON, so it has no keys") from None
        found = data.get(key) if isinstance(data, dict) else None
        if not isinstance(found, str) or not found:
            raise SecretError(f"{reference}: the secret has no key {key!r}")
        return found
