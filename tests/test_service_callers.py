"""Who the caller is: one rule (``service._callers``) for every route, the hot path included."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushprov import openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import FileKeySource
from pushprov.service import SqliteServiceState
from pushprov.service._answers import Answer
from pushprov.service._callers import Callers

from .service_support import Server, request_body, running_server

NOW = dt.datetime.now(dt.UTC)


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(headers), "state": {}}


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_bearer_and_basic_name_the_client_and_nothing_else_does(tmp_path: Path) -> None:
    state = SqliteServiceState(tmp_path / "state.sqlite")
    key = state.add_client("backend", at=NOW)
    callers = Callers(state)
    for value in (f"Bearer {key}".encode(), f"bearer  {key} ".encode(), _basic("any", key)):
        scope = _scope((b"accept", b"*/*"), (b"authorization", value))
        assert callers.identify(scope) == "backend", value
        assert scope["state"]["client"] == "backend"  # for the access log
        assert callers.require(scope) == "backend"
    refused = (
        b"Bearer wrong",
        f"Token {key}".encode(),
        _basic("backend", "wrong"),
        b"Basic !!not-base64!!",
        key.encode(),
        b"",
    )
    for value in refused:
        scope = _scope((b"authorization", value))
        assert callers.identify(scope) is None, value
        assert "client" not in scope["state"]
    # Only the first Authorization header counts, as it always did on every route.
    assert (
        callers.identify(
            _scope((b"authorization", b"Bearer x"), (b"authorization", f"Bearer {key}".encode()))
        )
        is None
    )
    with pytest.raises(Answer) as silent:
        callers.require(_scope())
    assert silent.value.status == 404 and silent.value.body == b""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    issuer = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    google = openpgp.generate_key("g <g@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[issuer], recipients=[google.certificate])
    with running_server(tmp_path_factory.mktemp("callers"), source) as srv:
        yield srv


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_every_route_knows_the_same_callers(server: Server, scheme: str) -> None:
    good = (
        f"Bearer {server.api_key}" if scheme == "bearer" else _basic("ops", server.api_key).decode()
    )
    bad = "Bearer nope" if scheme == "bearer" else _basic("ops", "nope").decode()
    pan = random_test_pan().reveal()
    with httpx.Client(base_url=server.url, verify=server.tls()) as client:
        for authorization, known in ((good, True), (bad, False)):
            headers = {"authorization": authorization}
            body = request_body(pan, request_id=f"callers-{scheme}-{known}")
            gopc = client.post("/v1/gopc", json=body, headers=headers)
            keys = client.get("/v1/keys", headers=headers)
            dashboard = client.get("/dashboard", headers=headers)
            if known:
                assert (gopc.status_code, keys.status_code, dashboard.status_code) == (
                    200,
                    200,
                    200,
                )
            else:
                assert (gopc.status_code, gopc.content) == (404, b"")
                assert (keys.status_code, keys.content) == (404, b"")
                assert dashboard.status_code == 401
