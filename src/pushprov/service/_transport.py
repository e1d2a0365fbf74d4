"""The outermost ASGI layer: request id, the caller gate, body cap before parsing, read timeout,
HSTS, access log, metrics; one of our errors met on the way answers its class's outcome (a
store outage: 503 ``SERVICE_UNAVAILABLE``), anything unforeseen a 500 without details. Then
POST /v1/gopc goes to its endpoint, everything else to FastAPI.

The caller gate (``Callers.admits``) comes before everything that looks at the request beyond
its headers: an unknown caller gets the silent 404 for any method, path and body, never a 405,
413, 307 or a framework's own 404 body that would tell this service apart."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._clock import now as _now
from .._errors import PushprovError
from ._answers import Answer, error, not_found, refusal
from ._callers import Callers
from ._config import ServiceConfig
from ._metrics import Metrics

__all__ = ["GOPC_PATH", "Transport"]

log = logging.getLogger("pushprov.service")

GOPC_PATH = "/v1/gopc"

_ROUTES = frozenset(
    (
        GOPC_PATH,
        "/v1/gopc/outcomes",
        "/v1/echo",
        "/v1/keys/public",
        "/v1/keys",
        "/livez",
        "/readyz",
        "/metrics",
        "/dashboard",
        "/openapi.json",
    )
)

_ADDED_HEADERS = (
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cache-control", b"no-store"),
)


class Transport:
    def __init__(
        self,
        app: ASGIApp,
        *,
        gopc: ASGIApp,
        callers: Callers,
        config: ServiceConfig,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.gopc = gopc
        self.callers = callers
        self.config = config
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        trace_id = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["trace_id"] = trace_id
        path = scope["path"]
        exchange = _Exchange(receive, send, trace_id, self.config)
        try:
            if not self.callers.admits(scope):
                await not_found().send(exchange.send)
                return
            _check_declared_length(scope, self.config.max_body_bytes)
            target = self.gopc if path == GOPC_PATH else self.app
            await target(scope, exchange.receive, exchange.send)
        except _BodyProblem as problem:
            await _body_answer(problem.status).send(exchange.send)
        except PushprovError as failure:
            # Ours, met outside a route's own handling (the store gone while the caller is
            # looked up or the answer stored): its class's outcome, a store outage 503.
            log.warning("refused", extra={"trace_id": trace_id, "error": failure.code})
            if not exchange.started:
                await refusal(failure, _now(), state.get("request_id")).send(exchange.send)
        except Exception as failure:
            log.error("unhandled", extra={"trace_id": trace_id, "error": type(failure).__name__})
            if not exchange.started:
                answer = error(500, "INTERNAL_ERROR", "internal error", _now(), None)
                await answer.send(exchange.send)
        finally:
            # Bounded label set: unknown paths are one label, never the raw path.
            route = path if path in _ROUTES else "other"
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, exchange.status, elapsed)
            if log.isEnabledFor(logging.INFO):
                _log_request(state, route, scope.get("method"), exchange.status, elapsed)


def _log_request(
    state: dict[str, Any], route: str, method: str | None, status: int, elapsed: float
) -> None:
    log.info(
        "request",
        extra={
            "trace_id": state["trace_id"],
            "route": route,
            "method": method,
            "status": status,
            "latency_ms": round(elapsed * 1000, 2),
            "client": state.get("client"),
            "request_id": state.get("request_id"),
            "keys": state.get("keys"),
        },
    )


class _Exchange:
    """One request's receive (capped and timed) and send (headers added, status noted)."""

    __slots__ = (
        "_cap",
        "_receive",
        "_received",
        "_send",
        "_timeout",
        "_trace",
        "started",
        "status",
    )

    def __init__(self, receive: Receive, send: Send, trace_id: str, config: ServiceConfig) -> None:
        self._receive = receive
        self._send = send
        self._trace = trace_id.encode()
        self._cap = config.max_body_bytes
        self._timeout = config.read_timeout
        self._received = 0
        self.status = 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            message["headers"] = [
                *message.get("headers", ()),
                (b"x-trace-id", self._trace),
                *_ADDED_HEADERS,
            ]
        await self._send(message)

    async def receive(self) -> Message:
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._receive()
        except TimeoutError:
            raise _BodyProblem(408) from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._cap:
                raise _BodyProblem(413)
        return message


def _check_declared_length(scope: Scope, cap: int) -> None:
    declared = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise _BodyProblem(413 if declared.isdigit() else 400)


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
