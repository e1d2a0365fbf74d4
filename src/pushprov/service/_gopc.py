"""POST /v1/gopc as a plain ASGI endpoint: the route every Add-to-Wallet tap goes through.

It runs without the framework's routing, dependency and exception layers, which cost more CPU
per request than all of our own checks (profiled under bench/load.py). The OpenAPI document
describes it from the same pydantic models it validates with (``openapi_path``).

Order of checks: caller (``_callers``, the rule every route uses, asked first by the
transport's gate before the body cap or a byte of the body: 404, empty body, when unknown;
here it is read back from the request's state) -> rate limit -> JSON -> schema ->
requestTimestamp window -> card -> keys -> crypto queue (503 when full) -> seal (an error: its
class's outcome) -> idempotency.
The idempotency record is looked up only where it decides something: with its insert after
the seal (a live record wins: the replay, or a 409), and when a check after the timestamp
refuses (the record, if any, wins over the refusal). A replay costs a seal that is thrown
away; a lookup on every request cost ~13 us of CPU (1.4 %, bench/load.py) to spare it.
The body cap and read timeout are the transport's, before any of this.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from .. import _api
from .._card import Card, Gopc, Pan, parse_strict_json
from .._encoding import Encoding
from .._errors import GopcInvalidError, PushprovError
from ..keys import Sealing, key_id_of
from ._answers import (
    ERROR_STATUSES,
    Answer,
    error,
    keys_unavailable,
    millis,
    refusal,
    validation_error,
)
from ._canary import CanarySelector
from ._context import Context
from ._models import ErrorResponse, GopcRequest, GopcResponse
from ._runtime import RateLimiter, check_request_time
from ._state import StoredResponse

__all__ = ["GopcEndpoint", "openapi_path"]


class GopcEndpoint:
    def __init__(self, context: Context, *, limiter: RateLimiter) -> None:
        # Unpacked once: attribute lookups on the hot path stay one level deep.
        self._config = context.config
        self._keys = context.keys
        self._current_keys = context.current_keys
        self._state = context.state
        self._clock = context.clock
        self._metrics = context.metrics
        self._queue = context.queue
        self._callers = context.callers
        self._limiter = limiter
        self._canary = CanarySelector(
            context.config.canary_fraction, context.config.canary_per_minute
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise Answer(405, headers=(("allow", "POST"),))
            status, body = await self._answer(scope, receive)
        except Answer as answer:
            await answer.send(send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        config, state = self._config, self._state
        client = self._callers.require(scope)
        at = self._clock()
        if not self._limiter.admit(client, int(at.timestamp())):
            raise error(429, "RATE_LIMITED", "too many requests; slow down", at, None)
        raw = await _read_body(receive)
        try:
            document = parse_strict_json(raw, what="request")
        except GopcInvalidError:
            raise error(400, "INVALID_FIELD_VALUE", "body is not valid JSON", at, None) from None
        try:
            body = GopcRequest.model_validate(document)
        except ValidationError as invalid:
            raise validation_error(invalid.errors(), at) from None
        request_id = body.requestHeader.requestId
        scope["state"]["request_id"] = request_id
        check_request_time(config, body.requestHeader.requestTimestamp, request_id, at)
        fingerprint = state.body_fingerprint(
            json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        )
        since = at - config.idempotency_window
        try:
            sealed, sealing = await self._seal(body, at, request_id)
        except Answer:
            # A stored record wins over any refusal from here on: a replay is answered as the
            # first time was, a reused requestId is a 409, whatever else is wrong now.
            stored = state.recall(client, request_id, since=since)
            if stored is None:
                raise
            return _replay(stored, fingerprint, at, request_id)
        scope["state"]["keys"] = [*sealing.signed_with, *sealing.encrypted_to]
        self._keys.note_seal(sealing, at)
        self._metrics.count_seals(sealing.signed_with, sealing.encrypted_to, sealing.canary)
        answer = {
            "responseHeader": {"responseTimestamp": millis(at), "requestId": request_id},
            "googleOpaquePaymentCard": sealed.decode("ascii"),
        }
        encoded = json.dumps(answer, separators=(",", ":")).encode()
        answer_record = StoredResponse(fingerprint, 200, encoded, sealing.encode())
        winner = state.remember(client, request_id, answer_record, at=at, since=since)
        return _replay(winner, fingerprint, at, request_id)

    async def _seal(
        self, body: GopcRequest, at: _dt.datetime, request_id: str
    ) -> tuple[bytes, Sealing]:
        """The sealed card and which keys sealed it (a canary GOPC: one key alone in a role)."""
        config = self._config
        try:
            card = Card(
                account_number=Pan(body.card.accountNumber.get_secret_value()),
                expiry_month=body.card.expiryMonth,
                expiry_year=body.card.expiryYear,
            )
            gopc = Gopc(server_session_id=body.serverSessionId, card=card)
        except GopcInvalidError as invalid:
            raise error(400, "INVALID_FIELD_VALUE", invalid.message, at, request_id) from None
        fmt: _api.Format = body.format or config.format  # type: ignore[assignment]
        encoding = Encoding(body.encoding) if body.encoding else None
        if fmt == "jwe" and encoding is not None:
            raise error(400, "INVALID_FIELD_VALUE", "encoding applies to pgp only", at, request_id)
        snapshot = self._current_keys(at, request_id)
        try:
            signers, recipients = snapshot.outgoing(fmt)
        except PushprovError:
            raise keys_unavailable(at, request_id) from None
        canary: tuple[str, ...] = ()
        if snapshot.canaries and fmt == "pgp":
            signers, recipients, canary = self._canary.choose(snapshot, signers, recipients)

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
            sealed = await self._queue.run(seal, at=at, request_id=request_id)
        except PushprovError as failure:
            raise refusal(failure, at, request_id) from None
        sealing = Sealing(
            tuple(key_id_of(key) for key in signers),
            tuple(key_id_of(key) for key in recipients),
            canary,
        )
        return sealed, sealing


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the caller went away
            raise Answer(400)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(
    stored: StoredResponse, fingerprint: bytes, at: _dt.datetime, request_id: str
) -> tuple[int, bytes]:
    if stored.fingerprint != fingerprint:
        raise error(
            409, "IDEMPOTENCY_VIOLATION", "requestId was used with another body", at, request_id
        )
    return stored.status, stored.body


def openapi_path() -> tuple[dict[str, Any], tuple[type[BaseModel], ...]]:
    """This endpoint's OpenAPI path item, from the models the handler validates with, and
    the models whose schemas it refers to."""

    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}

    errors = {
        str(status): {"description": ERROR_STATUSES[status], "content": content(ErrorResponse)}
        for status in (400, 409, 413, 429, 503)
    }
    operation = {
        "summary": "Seal a GOPC for Google with every active key",
        "operationId": "post_gopc",
        "requestBody": {"required": True, "content": content(GopcRequest)},
        "responses": {
            "200": {"description": "the sealed card", "content": content(GopcResponse)},
            "404": {"description": ERROR_STATUSES[404]},
            **errors,
        },
    }
    return {"post": operation}, (GopcRequest, GopcResponse, ErrorResponse)
