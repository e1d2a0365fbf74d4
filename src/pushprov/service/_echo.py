"""POST /v1/echo: Google's connectivity test with application-layer security.

Google calls it, as an API client of ours like any other (``pushprov clients add google``; its
key goes into Google's console with the endpoint), with ``Authorization: Bearer``, and over
mutual TLS as well when ``tls_client_ca`` is set. The caller is decided before the body is read
or any crypto runs: an unknown caller costs a header lookup, not an OpenPGP or JOSE open.

The body is a sealed ``{requestHeader, clientMessage}``; the answer seals ``{responseHeader,
clientMessage, serverMessage}`` back in the same format. A message we cannot decrypt, whose
signature we do not trust, or that needs a key we may not use, is from an unknown caller:
the silent 404.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from .. import _api
from .._card import parse_strict_json
from .._encoding import Encoding
from .._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    KeyUnusableError,
    PushprovError,
    SignatureInvalidError,
)
from .._opened import Opened
from ..keys import ServiceKeys
from ._answers import (
    TRANSPORT_ERRORS,
    UNKNOWN_CALLER,
    error,
    keys_unavailable,
    millis,
    not_found,
    refusal,
)
from ._context import Context
from ._models import RequestHeader
from ._runtime import check_request_time

__all__ = ["echo_router"]

# Content type -> envelope; the answer goes out with the content type it came in.
_FORMATS: dict[str, _api.Format] = {"application/jose": "jwe", "application/octet-stream": "pgp"}
# Google's rule: what does not open as from a known caller is answered as an unknown caller.
_UNKNOWN_CALLER_FAILURES = (DecryptionFailedError, SignatureInvalidError, KeyUnusableError)

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string"}},
        "application/jose": {"schema": {"type": "string"}},
    },
}


def echo_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/echo",
        summary="Google's connectivity test with application-layer security",
        description="Known callers (Google's API key). Body: a sealed echo request "
        "(application/octet-stream carrying base64url OpenPGP, or application/jose). Answer: "
        "the sealed {responseHeader, clientMessage, serverMessage}, in the same format. "
        "Unknown caller, signature or key: 404, empty body.",
        responses={**TRANSPORT_ERRORS, **UNKNOWN_CALLER},
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def post_echo(request: Request) -> Response:
        context.callers.require(request.scope)  # the transport's gate asked first; never skip it
        at = context.clock()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt = _FORMATS.get(content_type)
        if fmt is None:
            raise error(
                400,
                "INVALID_FIELD_VALUE",
                "content type must be application/octet-stream or application/jose",
                at,
                None,
            )
        sealed = await request.body()
        snapshot = context.current_keys(at)
        plaintext = await _open(context, sealed, snapshot, fmt, at)
        header, client_message = _echo_request(plaintext, at)
        check_request_time(context.config, header.requestTimestamp, header.requestId, at)
        reply = {
            "responseHeader": {"responseTimestamp": millis(at), "requestId": header.requestId},
            "clientMessage": client_message,
            "serverMessage": "pushprov echo",
        }
        answer = await _seal(context, reply, snapshot, fmt, header.requestId, at)
        return Response(answer, media_type=content_type)

    return router


async def _open(
    context: Context, sealed: bytes, snapshot: ServiceKeys, fmt: _api.Format, at: _dt.datetime
) -> bytes:
    decryptors, verifiers = snapshot.inbound(fmt)

    def open_() -> Opened:
        return _api.open_message(
            sealed, decrypt_with=decryptors, verify_with=verifiers, format=fmt, at=at
        )

    try:
        opened = await context.queue.run(open_, at=at, request_id=None)
    except PushprovError as failure:
        context.metrics.open_failures.labels(type(failure).code).inc()
        if isinstance(failure, _UNKNOWN_CALLER_FAILURES):
            raise not_found() from None
        raise refusal(failure, at, None) from None
    # The partner used this key of ours: `keys check` tells when, before anyone retires it.
    context.keys.note_open(opened.decryption_key, at)
    return opened.plaintext


def _echo_request(plaintext: bytes, at: _dt.datetime) -> tuple[RequestHeader, str]:
    """The opened request's header and clientMessage, or the 400 that says it is not one."""
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
    return header, client_message


async def _seal(
    context: Context,
    reply: dict[str, Any],
    snapshot: ServiceKeys,
    fmt: _api.Format,
    request_id: str,
    at: _dt.datetime,
) -> bytes:
    try:
        signers, recipients = snapshot.outgoing(fmt)
    except KeyUnusableError:
        raise keys_unavailable(at, request_id) from None

    def seal() -> bytes:
        return _api.seal_message(
            json.dumps(reply, separators=(",", ":")).encode(),
            sign_with=signers,
            encrypt_to=recipients,
            format=fmt,
            encoding=Encoding.BASE64URL if fmt == "pgp" else None,
            at=at,
        )

    return await context.queue.run(seal, at=at, request_id=request_id)
