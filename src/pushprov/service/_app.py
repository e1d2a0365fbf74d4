"""The HTTPS face: parse the request, call the verbs, render Google-style answers.

Every request passes the transport first (request id, body cap before parsing, read timeout,
HSTS, access log, metrics). POST /v1/gopc is then answered by ``_gopc.GopcEndpoint`` directly;
the other routes by FastAPI. Business outcomes answer 200; errors answer
``ErrorResponse{responseHeader, errorResponseCode, errorDescription}`` and never echo input.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _api
from .._card import parse_strict_json
from .._clock import now as _now
from .._encoding import Encoding
from .._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    KeyUnusableError,
    PushprovError,
    SignatureInvalidError,
)
from ..keys import KeySource, ServiceKeys
from ._answers import (
    ERROR_STATUSES,
    OUTWARD,
    Answer,
    error,
    keys_unavailable,
    millis,
    not_found,
    validation_error,
)
from ._config import ServiceConfig
from ._dashboard import counters_from_metrics, render_dashboard
from ._gopc import GopcEndpoint, openapi_path
from ._metrics import Metrics
from ._models import (
    ErrorResponse,
    KeysResponse,
    KeyState,
    PublicKeysResponse,
    RequestHeader,
)
from ._runtime import CryptoQueue, RateLimiter, caller_of, check_request_time
from ._state import ServiceState

__all__ = ["create_app"]

log = logging.getLogger("pushprov.service")

Clock = Callable[[], _dt.datetime]

_GOPC_PATH = "/v1/gopc"


class _Transport:
    """The outermost ASGI layer: request id, body cap before parsing, read timeout, HSTS, access
    log, metrics, and a 500 without details for anything unforeseen. Then POST /v1/gopc goes
    to its endpoint, everything else to FastAPI."""

    def __init__(
        self, app: ASGIApp, *, gopc: ASGIApp, config: ServiceConfig, metrics: Metrics
    ) -> None:
        self.app = app
        self.gopc = gopc
        self.config = config
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["trace_id"] = request_id
        status = 500
        sent_start = False
        cap = self.config.max_body_bytes
        read_timeout = self.config.read_timeout
        path = scope["path"]
        route = _route_label(path)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-trace-id", request_id.encode()),
                    (b"strict-transport-security", b"max-age=31536000"),
                    (b"cache-control", b"no-store"),
                ]
            await send(message)

        received = 0

        async def receive_capped() -> Message:
            nonlocal received
            try:
                async with asyncio.timeout(read_timeout):
                    message = await receive()
            except TimeoutError:
                raise _BodyProblem(408) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyProblem(413)
            return message

        try:
            declared = None
            for name, value in scope["headers"]:
                if name == b"content-length":
                    declared = value
            if declared is not None and (not declared.isdigit() or int(declared) > cap):
                raise _BodyProblem(413 if declared.isdigit() else 400)
            target = self.gopc if path == _GOPC_PATH else self.app
            await target(scope, receive_capped, send_wrapper)
        except _BodyProblem as problem:
            await _body_answer(problem.status).send(send_wrapper)
        except Exception as failure:
            log.error("unhandled", extra={"trace_id": request_id, "error": type(failure).__name__})
            if not sent_start:
                answer = error(500, "INTERNAL_ERROR", "internal error", _now(), None)
                await answer.send(send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "trace_id": request_id,
                        "route": route,
                        "method": scope.get("method"),
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 2),
                        "client": state.get("client"),
                        "request_id": state.get("request_id"),
                        "keys": state.get("keys"),
                    },
                )


def _body_answer(status: int) -> Answer:
    if status == 413:
        return error(413, "REQUEST_TOO_LARGE", "the request body is too large", _now(), None)
    if status == 408:
        return error(408, "REQUEST_TIMEOUT", "body not received", _now(), None)
    return error(400, "INVALID_FIELD_VALUE", "bad Content-Length", _now(), None)


class _BodyProblem(Exception):  # noqa: N818 - carries the status to answer with
    def __init__(self, status: int) -> None:
        super().__init__(str(status))
        self.status = status


_ROUTES = (
    "/v1/gopc",
    "/v1/echo",
    "/v1/keys/public",
    "/v1/keys",
    "/livez",
    "/readyz",
    "/metrics",
    "/dashboard",
)


def _route_label(path: str) -> str:
    # Bounded label set: unknown paths are one label, never the raw path.
    return path if path in _ROUTES or path == "/openapi.json" else "other"


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
    gopc = GopcEndpoint(
        config,
        keys=keys,
        state=state,
        clock=clock,
        metrics=metrics,
        queue=queue,
        limiter=RateLimiter(state, config.rate_limit_per_second),
    )
    app = FastAPI(
        title="pushprov",
        version="1",
        summary="Google Opaque Payment Cards for the issuer's backend",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    # Any route may meet the transport limits or a missing key set.
    transport_errors: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": ERROR_STATUSES[status]}
        for status in (400, 413, 503)
    }
    unknown_caller: dict[int | str, dict[str, Any]] = {404: {"description": ERROR_STATUSES[404]}}

    def current_keys(at: _dt.datetime) -> ServiceKeys:
        try:
            return keys.current(at)
        except PushprovError:
            raise keys_unavailable(at, None) from None

    def caller(request: Request) -> str | None:
        client = caller_of(state, request.headers.get("authorization", ""))
        if client is not None:
            request.scope["state"]["client"] = client
        return client

    async def authenticate(request: Request) -> str:
        client = caller(request)
        if client is None:
            raise not_found()
        return client

    @app.exception_handler(Answer)
    async def _answer(request: Request, exc: Answer) -> Response:
        return Response(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return await _answer(request, validation_error(exc.errors(), clock()))

    @app.post(
        "/v1/echo",
        summary="Google's connectivity test with application-layer security",
        description="Body: a sealed echo request (application/octet-stream carrying base64url "
        "OpenPGP, or application/jose). Answer: the sealed {responseHeader, clientMessage, "
        "serverMessage}, in the same format. Unknown signature or key: 404, empty body.",
        responses={**transport_errors, **unknown_caller},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string"}},
                    "application/jose": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_echo(request: Request) -> Response:
        at = clock()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt: _api.Format
        if content_type == "application/jose":
            fmt = "jwe"
        elif content_type == "application/octet-stream":
            fmt = "pgp"
        else:
            raise error(
                400,
                "INVALID_FIELD_VALUE",
                "content type must be application/octet-stream or application/jose",
                at,
                None,
            )
        sealed = await request.body()
        snapshot = current_keys(at)
        decryptors, verifiers = snapshot.inbound(fmt)

        def open_() -> bytes:
            return _api.open_message(
                sealed, decrypt_with=decryptors, verify_with=verifiers, format=fmt, at=at
            ).plaintext

        try:
            plaintext = await queue.run(open_, at=at, request_id=None)
        except (DecryptionFailedError, SignatureInvalidError, KeyUnusableError) as failure:
            metrics.open_failures.labels(type(failure).code).inc()
            raise not_found() from None
        except PushprovError as failure:
            metrics.open_failures.labels(type(failure).code).inc()
            status, code = OUTWARD.get(type(failure), (400, "INVALID_PAYLOAD"))
            raise error(status, code, failure.message, at, None) from None
        try:
            echo = parse_strict_json(plaintext, what="echo request")
            header = RequestHeader.model_validate(
                echo.get("requestHeader") if isinstance(echo, dict) else None
            )
            client_message = echo.get("clientMessage")
            if not isinstance(client_message, str) or len(client_message) > 1024:
                raise GopcInvalidError("clientMessage must be a string of at most 1024 characters")
        except (GopcInvalidError, ValidationError):
            raise error(
                400, "INVALID_DECRYPTED_REQUEST", "the echo request is not valid", at, None
            ) from None
        check_request_time(config, header.requestTimestamp, header.requestId, at)
        reply = {
            "responseHeader": {"responseTimestamp": millis(at), "requestId": header.requestId},
            "clientMessage": client_message,
            "serverMessage": "pushprov echo",
        }
        try:
            signers, recipients = snapshot.outgoing(fmt)
        except KeyUnusableError:
            raise keys_unavailable(at, header.requestId) from None

        def seal() -> bytes:
            return _api.seal_message(
                json.dumps(reply, separators=(",", ":")).encode(),
                sign_with=signers,
                encrypt_to=recipients,
                format=fmt,
                encoding=Encoding.BASE64URL if fmt == "pgp" else None,
                at=at,
            )

        answer = await queue.run(seal, at=at, request_id=header.requestId)
        return Response(answer, media_type=content_type)

    @app.get(
        "/v1/keys/public",
        response_model=PublicKeysResponse,
        responses=transport_errors,
        summary="Our active public keys",
    )
    async def public_keys() -> PublicKeysResponse:
        fmt = config.format
        published = current_keys(clock()).public_keys(fmt)
        return PublicKeysResponse(format=fmt, keys=published)  # type: ignore[arg-type]

    @app.get(
        "/v1/keys",
        response_model=KeysResponse,
        responses={**transport_errors, **unknown_caller},
        summary="Key states and days to expiry",
    )
    async def key_states(request: Request) -> KeysResponse:
        await authenticate(request)
        at = clock()
        snapshot = current_keys(at)
        return KeysResponse(
            version=snapshot.version,
            keys=[
                KeyState(
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
                for status in snapshot.inventory
            ],
        )

    @app.get("/livez", summary="The process is up")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Store reachable, an active key per role, none expired",
        responses={503: {"description": "not ready"}},
    )
    async def readyz() -> Response:
        at = clock()
        problems = []
        if not state.ping():
            problems.append("state store unreachable")
        try:
            snapshot = keys.current(at)
        except PushprovError as failure:
            problems.append(f"keys: {failure.code}")
        else:
            signers, recipients = snapshot.outgoing(config.format, strict=False)
            if not signers:
                problems.append("no active signing key of ours")
            if not recipients:
                problems.append("no active Google encryption key")
            for status in snapshot.inventory:
                if status.state == "active" and status.expires is not None and status.expires <= at:
                    problems.append(f"active key {status.id} is expired")
                metrics.expiry.labels(status.id, status.owner).set(
                    0 if status.expires is None else (status.expires - at).total_seconds()
                )
        body = {"status": "ready" if not problems else "not ready", "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get(
        "/dashboard",
        summary="Read-only dashboard: keys, their timeline, warnings, counters",
        response_class=Response,
        responses={401: {"description": "sign in: Basic auth, any user, the API key as password"}},
    )
    async def dashboard(request: Request) -> Response:
        if caller(request) is None:
            # A person in a browser: ask for credentials instead of the API's silent 404.
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="pushprov"'})
        at = clock()
        page = render_dashboard(
            current_keys(at),
            counters_from_metrics(metrics.render().decode()),
            env=config.env,
            at=at,
        )
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "img-src data:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            path_item, models = openapi_path()
            document["paths"] = {_GOPC_PATH: path_item, **document["paths"]}
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return _Transport(app, gopc=gopc, config=config, metrics=metrics)
