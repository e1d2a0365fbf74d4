"""The sandbox over HTTPS: sessions, GOPC acceptance, key exchange. For rehearsals only.

It plays Google's side for a rehearsal on one machine, so it has no callers to authenticate:
it answers peers on loopback only (anyone else gets 404 and an empty body, in case it is bound
to a wider address) and it must not be a CPU amplifier for them either. Every body is capped
before it is read or parsed (``_CAPS``: a GOPC of a few KiB, an issuer certificate), the opens
run one at a time on the event loop, and each open carries the OpenPGP engine's own
per-message budget (PKESKs, RSA operations).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._clock import now as _now
from .._errors import PushprovError
from .._text import printable
from ..keys import Environment, KeySource, Keystore
from ._core import Sandbox, SessionBook

__all__ = ["create_sandbox_app"]

ISSUER = "issuer"  # the owner name of issuer keys in the sandbox's keystore

# Body caps, before reading: a sealed GOPC with two signers and two recipients at 4096 bits is
# ~4 KiB of base64; an issuer certificate a few KiB. Other routes take no body worth the name.
GOPC_CAP = 16 * 1024
CERTIFICATE_CAP = 64 * 1024
_CAPS = {"/v1/gopc": GOPC_CAP, "/v1/issuer-keys": CERTIFICATE_CAP}
_OTHER_CAP = 1024


class SessionResponse(BaseModel):
    serverSessionId: str  # noqa: N815 - Google's wire name
    expiresAt: str  # noqa: N815


class GopcSubmission(BaseModel):
    googleOpaquePaymentCard: str = Field(max_length=GOPC_CAP)  # noqa: N815


class AppResult(BaseModel):
    """What the issuer's app gets back from Google for this GOPC, as its backend would report
    it to pushprov (POST /v1/gopc/outcomes): accepted, or rejected with Google's code."""

    outcome: Literal["accepted", "rejected"]
    errorCode: str | None  # noqa: N815


class AcceptanceResponse(BaseModel):
    accepted: bool
    reasonCode: str  # noqa: N815
    signers: list[str]
    decryptionKey: str | None  # noqa: N815
    appResult: AppResult  # noqa: N815


def create_sandbox_app(
    *,
    keys: KeySource,
    keystore: Callable[[], Keystore],
    sessions: SessionBook,
    clock: Callable[[], _dt.datetime] = _now,
) -> FastAPI:
    """``keystore`` opens the sandbox's keystore (per call: one SQLite connection per thread)."""
    sandbox = Sandbox(keys, sessions)
    app = FastAPI(title="pushprov sandbox (Google's side, for rehearsals)", version="1")
    app.add_middleware(_LoopbackAndCaps)

    @app.post("/v1/sessions", response_model=SessionResponse, summary="Issue a serverSessionId")
    async def new_session() -> SessionResponse:
        session_id, expires = sessions.issue(clock())
        return SessionResponse(serverSessionId=session_id, expiresAt=expires.isoformat())

    @app.post("/v1/gopc", response_model=AcceptanceResponse, summary="Accept or reject a GOPC")
    async def accept(submission: GopcSubmission) -> AcceptanceResponse:
        verdict = sandbox.accept(submission.googleOpaquePaymentCard.encode(), at=clock())
        return AcceptanceResponse(
            accepted=verdict.accepted,
            reasonCode=verdict.reason.value,
            signers=list(verdict.signers),
            decryptionKey=verdict.decryption_key,
            appResult=AppResult(
                outcome="accepted" if verdict.accepted else "rejected",
                errorCode=None if verdict.accepted else verdict.reason.value,
            ),
        )

    @app.get("/v1/keys/public", summary="The sandbox's active public keys (armored)")
    async def public_keys() -> dict[str, list[str]]:
        return {"keys": keys.current(clock()).public_keys("pgp")}

    @app.post("/v1/issuer-keys", summary="Trust an issuer certificate (imported, then verified)")
    async def trust_issuer(request: Request) -> Response:
        body = await request.body()
        at = clock()
        store = keystore()
        try:
            record = store.import_key(Environment.SANDBOX, body, at=at, owner=ISSUER)
            store.promote(Environment.SANDBOX, record.key_id, at=at, reason="trusted by API")
        except PushprovError as error:
            message = printable(error.message)  # read by a person in a rehearsal
            return JSONResponse({"error": error.code, "message": message}, status_code=400)
        finally:
            store.close()
        return JSONResponse({"keyId": record.key_id, "state": "active"})

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _LoopbackAndCaps:
    """Loopback peers only; each body capped by its route before a byte is parsed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _from_loopback(scope):
            await _answer(send, 404)
            return
        cap = _CAPS.get(scope["path"], _OTHER_CAP)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > cap:
            await _answer(send, 413 if declared.isdigit() else 400)
            return
        # Read the whole body here, up to the cap, and hand it on: a chunked body over the cap
        # is refused as one with a Content-Length would be, before the framework parses it.
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the peer went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > cap:
                await _answer(send, 413)
                return
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal body
            if body is None:  # read already: what comes next is the peer's (a disconnect)
                return await receive()
            message, body = body, None
            return message

        await self.app(scope, replay, send)


def _from_loopback(scope: Scope) -> bool:
    host = (scope.get("client") or ("",))[0].removeprefix("::ffff:")
    return bool(host == "::1" or host.startswith("127."))


async def _answer(send: Send, status: int) -> None:
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
