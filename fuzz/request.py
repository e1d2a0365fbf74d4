"""POST /v1/gopc with ``data`` as the body, through the service's whole ASGI app in-process.

An authenticated caller, so every body reaches the JSON reader, the schema, the time window,
the card checks and (when valid) a seal in either envelope. Refusals are 4xx answers; a 500
(the transport's answer to anything unforeseen) is a finding, reported as ``ServerError``.
A 200 must carry a GOPC that Google (the peer key) opens to the card that was sent
(``WrongAnswer`` otherwise).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pushprov
from pushprov.keys import FileKeySource
from pushprov.service import ServiceConfig, SqliteServiceState, create_app

from ._fixtures import AT, jose_keys, pgp_keys

_KEYS = pgp_keys()
_JWKS = jose_keys()
_DIRECTORY = tempfile.TemporaryDirectory(prefix="pushprov-fuzz-request-")
_LOOP = asyncio.new_event_loop()


class ServerError(Exception):
    """The app answered 5xx: something raised that no check foresaw."""


class WrongAnswer(Exception):  # noqa: N818 - a finding, named for what it is
    """A 200 whose GOPC does not open to the card of the request."""


def _build() -> tuple[Any, bytes]:
    directory = Path(_DIRECTORY.name)
    config = ServiceConfig(
        workers=1, data_dir=directory, rate_limit_per_second=1_000_000_000, log_level="error"
    )
    state = SqliteServiceState(directory / "service.sqlite")
    api_key = state.add_client("fuzz", at=AT)
    source = FileKeySource(
        signers=[_KEYS.ours, _JWKS.ours],
        recipients=[_KEYS.peer.certificate, _JWKS.peer.public()],
    )
    app = create_app(config, keys=source, state=state, clock=lambda: AT)
    return app, f"Bearer {api_key}".encode()


_APP, AUTHORIZATION = _build()
# The access log and the 500 path log each request; a fuzzer's millions would drown the output.
logging.getLogger("pushprov").setLevel(logging.CRITICAL)


async def _call(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), *headers, (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8443),
        "state": {},
    }
    sent = False
    statuses: list[int] = []
    answer: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await _APP(scope, receive, send)
    if len(statuses) != 1:
        raise ServerError(f"{len(statuses)} response starts")
    return statuses[0], b"".join(answer)


def call(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, bytes]:
    """Status and body the app answers; ServerError for a 500 (or not exactly one answer)."""
    status, answer = _LOOP.run_until_complete(_call(method, path, headers, body))
    if status == 500:
        raise ServerError(f"status {status}")
    return status, answer


def fuzz_one(data: bytes) -> None:
    headers = [(b"authorization", AUTHORIZATION), (b"content-type", b"application/json")]
    status, answer = call("POST", "/v1/gopc", headers, data)
    if status == 200:
        _check_gopc(json.loads(data), json.loads(answer))


def _check_gopc(request: dict[str, Any], answer: dict[str, Any]) -> None:
    pgp = request.get("format", "pgp") != "jwe"
    opened = pushprov.open_gopc(
        answer["googleOpaquePaymentCard"].encode("ascii"),
        session_id=request["serverSessionId"],
        decrypt_with=[_KEYS.peer if pgp else _JWKS.peer],
        verify_with=[_KEYS.ours.certificate if pgp else _JWKS.ours.public()],
        format="pgp" if pgp else "jwe",
        at=AT,
    )
    card = opened.gopc.card
    sent = request["card"]
    if (
        card.account_number.reveal() != sent["accountNumber"]
        or (card.expiry_month, card.expiry_year) != (sent["expiryMonth"], sent["expiryYear"])
        or answer["responseHeader"]["requestId"] != request["requestHeader"]["requestId"]
    ):
        raise WrongAnswer("the sealed card is not the card that was sent")
