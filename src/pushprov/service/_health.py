"""What probes and scrapers read: GET /livez, GET /readyz, GET /metrics.

/livez and /readyz are public on purpose (``_callers.PUBLIC``): a load balancer probes them
without credentials. Their bodies say no more than the status does, to an unknown caller:
readiness problems name keys, so only a known caller reads them. /metrics carries key
fingerprints and volumes: a known caller only (Prometheus sends the API key of a client made
for it, ``authorization: {credentials_file: ...}`` in its scrape config).
"""

from __future__ import annotations

import contextlib
import datetime as _dt

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .._errors import PushprovError
from ..keys import ServiceKeys
from ._answers import UNKNOWN_CALLER
from ._context import Context

__all__ = ["health_router"]


def health_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.get("/livez", summary="The process is up")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Store reachable, an active key per role, none expired, HSM keys' tokens "
        "usable (public; problems listed for known callers only)",
        responses={503: {"description": "not ready"}},
    )
    async def readyz(request: Request) -> Response:
        problems = _readiness_problems(context, context.clock())
        body: dict[str, object] = {"status": "ready" if not problems else "not ready"}
        if context.callers.identify(request.scope) is not None:
            body["problems"] = problems
        return JSONResponse(body, status_code=200 if not problems else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics (known callers)",
        response_class=Response,
        responses=UNKNOWN_CALLER,
    )
    async def metrics_endpoint(request: Request) -> Response:
        context.callers.require(request.scope)
        with contextlib.suppress(PushprovError):  # no keys: the counters still answer
            context.metrics.observe_evidence(context.keys.current(context.clock()).inventory)
        return Response(context.metrics.render(), media_type="text/plain; version=0.0.4")

    return router


def _readiness_problems(context: Context, at: _dt.datetime) -> list[str]:
    problems = []
    if not context.state.ping():
        problems.append("state store unreachable")
    try:
        snapshot = context.keys.current(at)
    except PushprovError as failure:
        problems.append(f"keys: {failure.code}")
    else:
        problems += _key_problems(context, snapshot, at)
        problems += snapshot.token_problems()
    return problems


def _key_problems(context: Context, snapshot: ServiceKeys, at: _dt.datetime) -> list[str]:
    """What keeps the keys from serving; sets each key's seconds-to-expiry gauge on the way."""
    problems = []
    signers, recipients = snapshot.outgoing(context.config.format, strict=False)
    if not signers:
        problems.append("no active signing key of ours")
    if not recipients:
        problems.append("no active Google encryption key")
    for status in snapshot.inventory:
        if status.state == "active" and status.expires is not None and status.expires <= at:
            problems.append(f"active key {status.id} is expired")
        context.metrics.expiry.labels(status.id, status.owner).set(
            0 if status.expires is None else (status.expires - at).total_seconds()
        )
    return problems
