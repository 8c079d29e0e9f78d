"""Dependencies of the API's routes: the wiring and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from brief.api.auth import ANONYMOUS, authorizer_identity, key_caller, keyring
from brief.ids import ID_PATTERN
from brief.jobstore import JobStore
from brief.wiring import Wiring


def get_wiring(request: Request) -> Wiring:
    """The container's wiring, put on the app by `create_app`; tests override it."""
    wiring: Wiring = request.app.state.wiring()
    return wiring


WiringDep = Annotated[Wiring, Depends(get_wiring)]

JobIdPath = Annotated[str, Path(pattern=f"^{ID_PATTERN}$", description="The job's id.")]
BatchIdPath = Annotated[str, Path(pattern=f"^{ID_PATTERN}$")]


async def get_store(wiring: WiringDep) -> JobStore:
    """The job store, on clients the container keeps between requests."""
    return await wiring.store()


# Both ways of presenting a key, declared as security schemes so /docs can send them. They
# never reject a request themselves (auto_error=False): `get_caller` decides, and only when
# keys are configured.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKeyBearer",
    description="An API key as `Authorization: Bearer <key>` (`brief keys new NAME` makes one).",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="An API key as `X-API-Key: <key>`.",
)
_CHALLENGE = 'Bearer realm="brief"'


def get_caller(
    request: Request,
    wiring: Annotated[Wiring | None, Depends(get_wiring)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    api_key: Annotated[str | None, Security(_api_key)] = None,
) -> str:
    """Who is calling: API Gateway's authorizer identity when deployed behind one; else the
    holder of a configured API key; else "anonymous", but only while no keys are configured.

    With keys configured, a request without a valid key is a 401 (with `WWW-Authenticate`).
    A job belongs to its caller and is invisible to others (the API answers 404).
    """
    identity = authorizer_identity(request.scope.get("aws.event"))
    if identity:
        return identity
    keys = keyring(wiring.settings.api_keys) if wiring is not None else None
    if not keys:
        if wiring is not None and wiring.settings.require_auth:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "This deployment admits no anonymous callers, and it has no API keys: set "
                "BRIEF_API_KEYS (`brief keys new NAME`) or put an authorizer in front of it.",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        return ANONYMOUS
    presented = bearer.credentials if bearer is not None else api_key
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "This API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    name = keys.identify(presented)
    if name is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "The API key is not valid (it may have been revoked).",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    return key_caller(name)


StoreDep = Annotated[JobStore, Depends(get_store)]
CallerDep = Annotated[str, Depends(get_caller)]
