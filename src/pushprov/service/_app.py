"""The HTTPS face: parse the request, call the verbs, render Google-style answers.

Order of checks for POST /v1/gopc: body cap (before parsing) -> caller (404, empty body, when
unknown) -> rate limit -> schema -> requestTimestamp window -> idempotency -> card -> crypto
queue (503 when full) -> seal. Business outcomes answer 200; errors answer
``ErrorResponse{responseHeader, errorResponseCode, errorDescription}`` and never echo input.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _api, jose, openpgp
from .._card import Card, Gopc, Pan, parse_strict_json
from .._clock import now as _now
from .._encoding import Encoding
from .._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    InputTooLargeError,
    KeyUnusableError,
    MalformedInputError,
    PolicyViolationError,
    PushprovError,
    SignatureInvalidError,
    UnsupportedError,
)
from ..keys import KeySource, ServiceKeys
from ._config import ServiceConfig
from ._dashboard import counters_from_metrics, render_dashboard
from ._metrics import Metrics
from ._models import (
    ErrorResponse,
    GopcRequest,
    GopcResponse,
    KeysResponse,
    KeyState,
    PublicKeysResponse,
    RequestHeader,
    ResponseHeader,
)
from ._state import ServiceState, StoredResponse

__all__ = ["create_app"]

log = logging.getLogger("pushprov.service")

Clock = Callable[[], _dt.datetime]


class _Answer(Exception):  # noqa: N818 - control flow: an answer, not a failure
    """An early, complete answer (an error response, or 404 with an empty body)."""

    def __init__(self, response: Response) -> None:
        super().__init__("answer")
        self.response = response


def _millis(at: _dt.datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _error(
    status: int, code: str, description: str, at: _dt.datetime, request_id: str | None
) -> _Answer:
    body = ErrorResponse(
        responseHeader=ResponseHeader(responseTimestamp=_millis(at), requestId=request_id),
        errorResponseCode=code,
        errorDescription=description,
    )
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return _Answer(JSONResponse(body.model_dump(), status_code=status, headers=headers))


def _not_found() -> _Answer:
    # Google's rule for unauthenticated callers: 404 and nothing else to learn from.
    return _Answer(Response(status_code=404))


# How our errors look from outside: (HTTP status, errorResponseCode). One entry per class.
_OUTWARD: dict[type[PushprovError], tuple[int, str]] = {
    GopcInvalidError: (400, "INVALID_FIELD_VALUE"),
    MalformedInputError: (400, "INVALID_FIELD_VALUE"),
    InputTooLargeError: (413, "REQUEST_TOO_LARGE"),
    KeyUnusableError: (503, "KEYS_UNAVAILABLE"),
    PolicyViolationError: (400, "POLICY_VIOLATION"),
    UnsupportedError: (400, "UNSUPPORTED"),
}


class _CryptoQueue:
    """A few crypto threads per worker; at most ``limit`` requests waiting or running, else 503.

    pyca/cryptography releases the GIL during RSA, so the event loop keeps answering (and
    refusing) while seals run, and two threads overlap their RSA work: measured, 2 threads per
    worker seal ~40 % more per second than 1 on this 2-core machine.
    """

    def __init__(self, limit: int, threads: int) -> None:
        self._limit = limit
        self._inside = 0
        self._limiter = anyio.CapacityLimiter(threads)

    @property
    def depth(self) -> int:
        return self._inside

    async def run(self, fn: Callable[[], Any]) -> Any:
        if self._inside >= self._limit:
            raise OverflowError
        self._inside += 1
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        finally:
            self._inside -= 1


class _Transport:
    """Pure ASGI middleware: request id, body cap before parsing, read timeout, HSTS, access log,
    metrics. Runs before FastAPI touches the body."""

    def __init__(self, app: ASGIApp, config: ServiceConfig, metrics: Metrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["trace_id"] = request_id
        status_holder = {"status": 500}
        cap = self.config.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        route = _route_label(scope.get("path", ""))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-trace-id", request_id.encode()))
                headers.append((b"strict-transport-security", b"max-age=31536000"))
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        received = 0

        async def receive_capped() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), timeout=self.config.read_timeout)
            except TimeoutError:
                raise _BodyProblem(408) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyProblem(413)
            return message

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > cap):
                raise _BodyProblem(413 if declared.isdigit() else 400)
            await self.app(scope, receive_capped, send_wrapper)
        except _BodyProblem as problem:
            answer = _error(
                problem.status,
                "REQUEST_TOO_LARGE" if problem.status == 413 else "REQUEST_TIMEOUT",
                "the request body is too large" if problem.status == 413 else "body not received",
                _now(),
                None,
            )
            await answer.response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            status = status_holder["status"]
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "trace_id": request_id,
                    "route": route,
                    "method": scope.get("method"),
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 2),
                    "client": scope.get("state", {}).get("client"),
                    "request_id": scope.get("state", {}).get("request_id"),
                    "keys": scope.get("state", {}).get("keys"),
                },
            )


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
) -> FastAPI:
    metrics = metrics or Metrics()
    queue = _CryptoQueue(config.queue_limit, config.crypto_threads)
    app = FastAPI(
        title="pushprov",
        version="1",
        summary="Google Opaque Payment Cards for the issuer's backend",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    error_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": text}
        for status, text in (
            (400, "bad input"),
            (409, "same requestId, different body"),
            (413, "body over the cap"),
            (429, "rate limited"),
            (503, "overloaded or no usable keys; retry after Retry-After"),
        )
    }
    error_responses[404] = {"description": "unknown caller (empty body)"}
    # Any route may meet the transport limits or a missing key set.
    transport_errors: dict[int | str, dict[str, Any]] = {
        status: error_responses[status] for status in (400, 413, 503)
    }

    def current_keys(at: _dt.datetime) -> ServiceKeys:
        try:
            return keys.current(at)
        except PushprovError:
            raise _error(503, "KEYS_UNAVAILABLE", "no usable keys", at, None) from None

    def caller(request: Request) -> str | None:
        """The client behind a Bearer key, or Basic auth with the key as password (browsers)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "basic":
            try:
                token = base64.b64decode(token, validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        elif scheme.lower() != "bearer":
            return None
        client = state.authenticate(token)
        if client is not None:
            request.scope["state"]["client"] = client
        return client

    async def authenticate(request: Request) -> str:
        client = caller(request)
        if client is None:
            raise _not_found()
        return client

    async def read_json(request: Request) -> Any:
        body = await request.body()
        try:
            return parse_strict_json(body, what="request")
        except GopcInvalidError:
            raise _error(
                400, "INVALID_FIELD_VALUE", "body is not valid JSON", clock(), None
            ) from None

    def check_header(header: RequestHeader, at: _dt.datetime) -> None:
        sent = int(header.requestTimestamp) / 1000
        if abs(sent - at.timestamp()) > config.timestamp_skew.total_seconds():
            raise _error(
                400,
                "REQUEST_TIMESTAMP_OUT_OF_RANGE",
                f"requestTimestamp must be within {int(config.timestamp_skew.total_seconds())} s",
                at,
                header.requestId,
            )

    async def crypto(fn: Callable[[], Any], at: _dt.datetime, request_id: str | None) -> Any:
        try:
            return await queue.run(fn)
        except OverflowError:
            metrics.overload.inc()
            raise _error(503, "OVERLOADED", "too many requests in flight", at, request_id) from None

    @app.exception_handler(_Answer)
    async def _answer(request: Request, exc: _Answer) -> Response:
        return exc.response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _validation_answer(exc.errors(), clock()).response

    @app.post(
        "/v1/gopc",
        response_model=GopcResponse,
        responses=error_responses,
        summary="Seal a GOPC for Google with every active key",
        # The body is parsed by hand (duplicate members refused), so name its schema here.
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/GopcRequest"}}
                },
            }
        },
    )
    async def post_gopc(request: Request) -> Response:
        client = await authenticate(request)
        at = clock()
        window = int(at.timestamp())
        if state.count_request(client, window) > config.rate_limit_per_second:
            raise _error(429, "RATE_LIMITED", "too many requests; slow down", at, None)
        document = await read_json(request)
        try:
            body = GopcRequest.model_validate(document)
        except ValidationError as invalid:
            raise _validation_answer(invalid.errors(), at) from None
        request_id = body.requestHeader.requestId
        request.scope["state"]["request_id"] = request_id
        check_header(body.requestHeader, at)
        fingerprint = state.body_fingerprint(
            json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        )
        since = at - config.idempotency_window
        stored = state.recall(client, request_id, since=since)
        if stored is not None:
            return _replay(stored, fingerprint, at, request_id)
        try:
            card = Card(
                account_number=Pan(body.card.accountNumber.get_secret_value()),
                expiry_month=body.card.expiryMonth,
                expiry_year=body.card.expiryYear,
            )
            gopc = Gopc(server_session_id=body.serverSessionId, card=card)
        except GopcInvalidError as invalid:
            raise _error(400, "INVALID_FIELD_VALUE", invalid.message, at, request_id) from None
        fmt: _api.Format = body.format or config.format  # type: ignore[assignment]
        encoding = Encoding(body.encoding) if body.encoding else None
        if fmt == "jwe" and encoding is not None:
            raise _error(400, "INVALID_FIELD_VALUE", "encoding applies to pgp only", at, request_id)
        snapshot = current_keys(at)
        try:
            signers, recipients = _for_format(snapshot, fmt)
        except KeyUnusableError:
            raise _error(503, "KEYS_UNAVAILABLE", "no usable keys", at, request_id) from None

        def seal() -> bytes:
            return _api.seal_gopc(
                gopc,
                sign_with=signers,
                encrypt_to=recipients,
                format=fmt,
                encoding=encoding,
                at=at,
            )

        try:
            sealed: bytes = await crypto(seal, at, request_id)
        except PushprovError as failure:
            status, code = _OUTWARD.get(type(failure), (500, "INTERNAL_ERROR"))
            raise _error(status, code, failure.message, at, request_id) from None
        used = [_key_id(key) for key in (*signers, *recipients)]
        request.scope["state"]["keys"] = used
        keys.note_use(used, at)
        for key in signers:
            metrics.seals.labels(_key_id(key), "sign").inc()
        for key in recipients:
            metrics.seals.labels(_key_id(key), "encrypt").inc()
        answer = GopcResponse(
            responseHeader=ResponseHeader(responseTimestamp=_millis(at), requestId=request_id),
            googleOpaquePaymentCard=sealed.decode("ascii"),
        )
        encoded = answer.model_dump_json().encode()
        winner = state.remember(
            client,
            request_id,
            StoredResponse(fingerprint, 200, encoded),
            at=at,
            since=since,
        )
        return _replay(winner, fingerprint, at, request_id)

    @app.post(
        "/v1/echo",
        summary="Google's connectivity test with application-layer security",
        description="Body: a sealed echo request (application/octet-stream carrying base64url "
        "OpenPGP, or application/jose). Answer: the sealed {responseHeader, clientMessage, "
        "serverMessage}, in the same format. Unknown signature or key: 404, empty body.",
        responses={**transport_errors, 404: error_responses[404]},
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
            raise _error(
                400,
                "INVALID_FIELD_VALUE",
                "content type must be application/octet-stream or application/jose",
                at,
                None,
            )
        sealed = await request.body()
        snapshot = current_keys(at)
        decryptors, verifiers = _inbound_for_format(snapshot, fmt)

        def open_() -> bytes:
            return _api.open_message(
                sealed, decrypt_with=decryptors, verify_with=verifiers, format=fmt, at=at
            ).plaintext

        try:
            plaintext: bytes = await crypto(open_, at, None)
        except (DecryptionFailedError, SignatureInvalidError, KeyUnusableError) as failure:
            metrics.open_failures.labels(type(failure).code).inc()
            raise _not_found() from None
        except PushprovError as failure:
            metrics.open_failures.labels(type(failure).code).inc()
            status, code = _OUTWARD.get(type(failure), (400, "INVALID_PAYLOAD"))
            raise _error(status, code, failure.message, at, None) from None
        try:
            echo = parse_strict_json(plaintext, what="echo request")
            header = RequestHeader.model_validate(
                echo.get("requestHeader") if isinstance(echo, dict) else None
            )
            client_message = echo.get("clientMessage")
            if not isinstance(client_message, str) or len(client_message) > 1024:
                raise GopcInvalidError("clientMessage must be a string of at most 1024 characters")
        except (GopcInvalidError, ValidationError):
            raise _error(
                400, "INVALID_DECRYPTED_REQUEST", "the echo request is not valid", at, None
            ) from None
        check_header(header, at)
        reply = {
            "responseHeader": {"responseTimestamp": _millis(at), "requestId": header.requestId},
            "clientMessage": client_message,
            "serverMessage": "pushprov echo",
        }
        try:
            signers, recipients = _for_format(snapshot, fmt)
        except KeyUnusableError:
            raise _error(503, "KEYS_UNAVAILABLE", "no usable keys", at, header.requestId) from None

        def seal() -> bytes:
            return _api.seal_message(
                json.dumps(reply, separators=(",", ":")).encode(),
                sign_with=signers,
                encrypt_to=recipients,
                format=fmt,
                encoding=Encoding.BASE64URL if fmt == "pgp" else None,
                at=at,
            )

        answer: bytes = await crypto(seal, at, header.requestId)
        return Response(answer, media_type=content_type)

    @app.get(
        "/v1/keys/public",
        response_model=PublicKeysResponse,
        responses=transport_errors,
        summary="Our active public keys",
    )
    async def public_keys() -> PublicKeysResponse:
        snapshot = current_keys(clock())
        fmt = config.format
        published = [
            text for text in snapshot.published if text.lstrip().startswith("{") == (fmt == "jwe")
        ]
        return PublicKeysResponse(format=fmt, keys=published)  # type: ignore[arg-type]

    @app.get(
        "/v1/keys",
        response_model=KeysResponse,
        responses={**transport_errors, 404: error_responses[404]},
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
            signers, recipients = _for_format(snapshot, config.format, strict=False)
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
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            request_schema = GopcRequest.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas.update(request_schema.pop("$defs", {}))
            schemas["GopcRequest"] = request_schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(_Transport, config=config, metrics=metrics)
    return app


def _validation_answer(errors: Any, at: _dt.datetime) -> _Answer:
    # Field locations only: pydantic's messages can quote the input (a card number).
    fields = sorted(
        {".".join(str(part) for part in error.get("loc", ()) if part != "body") for error in errors}
    )
    missing = all(error.get("type") == "missing" for error in errors)
    code = "MISSING_REQUIRED_FIELD" if missing else "INVALID_FIELD_VALUE"
    return _error(400, code, "invalid or missing: " + ", ".join(fields)[:300], at, None)


def _replay(
    stored: StoredResponse, fingerprint: bytes, at: _dt.datetime, request_id: str
) -> Response:
    if stored.fingerprint != fingerprint:
        raise _error(
            409, "IDEMPOTENCY_VIOLATION", "requestId was used with another body", at, request_id
        )
    return Response(stored.body, status_code=stored.status, media_type="application/json")


def _key_id(key: object) -> str:
    if isinstance(key, openpgp.SecretKey | openpgp.Certificate):
        return key.fingerprint
    assert isinstance(key, jose.JwkKey)
    return key.kid


def _for_format(
    snapshot: ServiceKeys, fmt: str, *, strict: bool = True
) -> tuple[list[Any], list[Any]]:
    """Outgoing keys of one envelope: PGP uses every active key; JWE exactly one each."""
    kind_secret = openpgp.SecretKey if fmt == "pgp" else jose.JwkKey
    kind_public = openpgp.Certificate if fmt == "pgp" else jose.JwkKey
    signers = [key for key in snapshot.signers if isinstance(key, kind_secret)]
    recipients = [key for key in snapshot.recipients if isinstance(key, kind_public)]
    if strict and (not signers or not recipients):
        raise KeyUnusableError(f"no active {fmt} keys for both roles")
    return signers, recipients


def _inbound_for_format(snapshot: ServiceKeys, fmt: str) -> tuple[list[Any], list[Any]]:
    kind_secret = openpgp.SecretKey if fmt == "pgp" else jose.JwkKey
    kind_public = openpgp.Certificate if fmt == "pgp" else jose.JwkKey
    return (
        [key for key in snapshot.decryptors if isinstance(key, kind_secret)],
        [key for key in snapshot.verifiers if isinstance(key, kind_public)],
    )
