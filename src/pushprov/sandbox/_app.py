"""The sandbox over HTTPS: sessions, GOPC acceptance, key exchange. For rehearsals only."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from .._clock import now as _now
from .._errors import PushprovError
from .._text import printable
from ..keys import Environment, KeySource, Keystore
from ._core import Sandbox, SessionBook

__all__ = ["create_sandbox_app"]

ISSUER = "issuer"  # the owner name of issuer keys in the sandbox's keystore


class SessionResponse(BaseModel):
    serverSessionId: str  # noqa: N815 - Google's wire name
    expiresAt: str  # noqa: N815


class GopcSubmission(BaseModel):
    googleOpaquePaymentCard: str = Field(max_length=256 * 1024)  # noqa: N815


class AcceptanceResponse(BaseModel):
    accepted: bool
    reasonCode: str  # noqa: N815
    signers: list[str]
    decryptionKey: str | None  # noqa: N815


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
