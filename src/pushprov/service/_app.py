"""The HTTPS face, assembled: the transport, POST /v1/gopc's endpoint and the FastAPI routers.

Every request passes the transport first (``_transport``: request id, the caller gate, body
cap before parsing, read timeout, HSTS, access log, metrics). The gate answers an unknown caller
404 with an empty body on every route but /livez and /readyz (``_callers.PUBLIC``). POST
/v1/gopc is then answered by ``_gopc.GopcEndpoint`` directly; the other routes by FastAPI, one
router per concern:

    _gopc        POST /v1/gopc                 plain ASGI, the hot path
    _echo        POST /v1/echo
    _keys        GET /v1/keys/public, GET /v1/keys
    _outcomes    POST /v1/gopc/outcomes        what Google answered, joined to the sealing keys
    _health      GET /livez, GET /readyz, GET /metrics
    _dashboard   GET /dashboard

Who the caller is, every route asks ``_callers``; how an error looks from outside, its class
says (``_answers.refusal``). Business outcomes answer 200; errors answer
``ErrorResponse{responseHeader, errorResponseCode, errorDescription}`` and never echo input.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from .._clock import now as _now
from .._errors import PushprovError
from ..keys import KeySource
from ._answers import Answer, refusal, validation_error
from ._callers import Callers
from ._config import ServiceConfig
from ._context import Clock, Context
from ._dashboard import dashboard_router
from ._echo import echo_router
from ._gopc import GopcEndpoint, openapi_path
from ._health import health_router
from ._keys import keys_router
from ._metrics import Metrics
from ._outcomes import outcomes_router
from ._runtime import CryptoQueue, RateLimiter
from ._state import ServiceState
from ._transport import GOPC_PATH, Transport

__all__ = ["create_app"]


def create_app(
    config: ServiceConfig,
    *,
    keys: KeySource,
    state: ServiceState,
    clock: Clock = _now,
    metrics: Metrics | None = None,
) -> ASGIApp:
    metrics = metrics or Metrics()
    queue = CryptoQueue(config.queue_limit, on_refusal=metrics.overload.inc)
    callers = Callers(state)
    context = Context(config, keys, state, clock, metrics, queue, callers)
    gopc = GopcEndpoint(context, limiter=RateLimiter(state, config.rate_limit_per_second))
    app = FastAPI(
        title="pushprov",
        version="1",
        summary="Google Opaque Payment Cards for the issuer's backend",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    for router in (echo_router, keys_router, outcomes_router, health_router, dashboard_router):
        app.include_router(router(context))

    @app.exception_handler(Answer)
    async def _answer(request: Request, exc: Answer) -> Response:
        return Response(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(PushprovError)
    async def _refused(request: Request, exc: PushprovError) -> Response:
        # Starlette would answer 500 itself before the transport saw the error.
        return await _answer(request, refusal(exc, clock(), None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return await _answer(request, validation_error(exc.errors(), clock()))

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return Transport(app, gopc=gopc, callers=callers, config=config, metrics=metrics)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for its routes, with POST /v1/gopc's path item and models added."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        path_item, models = openapi_path()
        document["paths"] = {GOPC_PATH: path_item, **document["paths"]}
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = document
    return app.openapi_schema
