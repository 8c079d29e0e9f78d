"""Who is calling: API keys checked against their hashes, or API Gateway's authorizer.

A deployment lists its callers' keys in `BRIEF_API_KEYS` as comma-separated `name:sha256hex`
pairs: only hashes are configured, so the settings never hold a usable key. A caller
presents its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`; the key's SHA-256
is compared with every configured hash in constant time (`hmac.compare_digest`, with no
early exit, so timing tells neither whether nor which key matched). Keys are never logged.

With no keys configured every caller is "anonymous" (the local stack's default).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANONYMOUS = "anonymous"
KEY_PREFIX = "brief_"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENTRY = re.compile(r"^([A-Za-z0-9_.-]{1,64}):([0-9a-f]{64})$")


def key_hash(key: str) -> str:
    """The hex SHA-256 of a key: what the settings hold in place of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def settings_entry(name: str, key: str) -> str:
    """The `name:sha256hex` entry of `BRIEF_API_KEYS` for a key."""
    if not NAME.fullmatch(name):
        raise ValueError("a key's name is 1-64 letters, digits, '_', '.' or '-'")
    return f"{name}:{key_hash(key)}"


@dataclass(frozen=True)
class Keyring:
    """The configured keys, as (name, SHA-256 digest) pairs."""

    entries: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Keyring:
        """A keyring from `name:sha256hex` entries; ValueError names a malformed one."""
        parsed: list[tuple[str, bytes]] = []
        for n, entry in enumerate(entries, start=1):
            match = _ENTRY.fullmatch(entry.strip())
            if match is None:
                # Never echo the entry: a mistaken deployment may have put a key there.
                raise ValueError(f"BRIEF_API_KEYS entry {n} is not `name:sha256hex`")
            parsed.append((match.group(1), bytes.fromhex(match.group(2))))
        return cls(tuple(parsed))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def identify(self, key: str) -> str | None:
        """The name of the key, or None; every configured hash is compared, matched or not."""
        digest = hashlib.sha256(key.encode()).digest()
        found: str | None = None
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: `Authorization: Bearer <key>`, else `X-API-Key`."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def key_caller(name: str) -> str:
    """The identity of a key's holder; prefixed so it never collides with an authorizer's."""
    return f"key:{name}"


def authorizer_identity(event: Any) -> str | None:
    """API Gateway's authorizer identity in the Lambda event Mangum put in the scope, if any:
    a JWT's `sub`, an IAM user's ARN, or a Lambda authorizer's `principalId`."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext") or {}
    authorizer = (context.get("authorizer") if isinstance(context, dict) else None) or {}
    if not isinstance(authorizer, dict):
        return None
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    iam = authorizer.get("iam") or {}
    lambda_ctx = authorizer.get("lambda") or {}
    identity = claims.get("sub") or iam.get("userArn") or lambda_ctx.get("principalId")
    return str(identity) if identity else None


@functools.lru_cache(maxsize=8)
def keyring(entries: tuple[str, ...]) -> Keyring:
    """The keyring of the configured entries, parsed once per container."""
    return Keyring.parse(entries)
