"""GET /v1/keys/public (our active public keys) and GET /v1/keys (key states and days to
expiry), both for known callers.

Our public keys are public, but not published here to strangers: Google gets them out of band
(the key exchange in its console), and answering an unknown caller would tell the service
apart. Our backend and tooling, which hold API keys, read them here."""

from __future__ import annotations

import datetime as _dt

from fastapi import APIRouter, Request

from ..keys import KeyStatus
from ._answers import TRANSPORT_ERRORS, UNKNOWN_CALLER
from ._context import Context
from ._models import KeysResponse, KeyState, PublicKeysResponse

__all__ = ["keys_router"]


def keys_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/keys/public",
        response_model=PublicKeysResponse,
        responses={**TRANSPORT_ERRORS, **UNKNOWN_CALLER},
        summary="Our active public keys",
    )
    async def public_keys(request: Request) -> PublicKeysResponse:
        context.callers.require(request.scope)
        fmt = context.config.format
        published = context.current_keys(context.clock()).public_keys(fmt)
        return PublicKeysResponse(format=fmt, keys=published)  # type: ignore[arg-type]

    @router.get(
        "/v1/keys",
        response_model=KeysResponse,
        responses={**TRANSPORT_ERRORS, **UNKNOWN_CALLER},
        summary="Key states and days to expiry",
    )
    async def key_states(request: Request) -> KeysResponse:
        context.callers.require(request.scope)
        at = context.clock()
        snapshot = context.current_keys(at)
        return KeysResponse(
            version=snapshot.version,
            keys=[_key_state(status, at) for status in snapshot.inventory],
        )

    return router


def _key_state(status: KeyStatus, at: _dt.datetime) -> KeyState:
    return KeyState(
        id=status.id,
        format=status.format,
        owner=status.owner,
        roles=list(status.roles),
        state=status.state,
        expires=status.expires.isoformat() if status.expires else None,
        daysToExpiry=None
        if status.expires is None
        else round((status.expires - at).total_seconds() / 86400, 2),
    )
