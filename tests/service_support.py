"""A real pushprov server on loopback over TLS, run in a thread of the test process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from pushprov.hosting import listen_socket, uvicorn_config
from pushprov.keys import KeySource
from pushprov.service import ServiceConfig, SqliteServiceState, create_app, dev_certificate

if TYPE_CHECKING:
    from pushprov.store import PostgresServiceState


@dataclasses.dataclass
class Server:
    url: str
    cert: Path
    state: SqliteServiceState
    api_key: str
    app: Any

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.url, verify=self.tls(), headers=headers, **kwargs)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def request_body(
    pan: str,
    *,
    request_id: str = "req-1",
    session: str = "sess-1",
    at: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    stamp = int((time.time() if at is None else at) * 1000)
    body: dict[str, Any] = {
        "requestHeader": {"requestId": request_id, "requestTimestamp": str(stamp)},
        "serverSessionId": session,
        "card": {"accountNumber": pan, "expiryMonth": "12", "expiryYear": "29"},
    }
    body.update(extra)
    return body


@contextmanager
def running_server(tmp: Path, keys: KeySource, **overrides: Any) -> Iterator[Server]:
    cert, key, _ = dev_certificate(tmp / "tls", now=dt.datetime.now(dt.UTC))
    overrides.setdefault("tls_cert", cert)
    overrides.setdefault("tls_key", key)
    config = ServiceConfig(port=0, workers=1, data_dir=tmp, **overrides)
    state = SqliteServiceState(tmp / "service.sqlite")
    api_key = state.add_client("backend", at=dt.datetime.now(dt.UTC))
    app = create_app(config, keys=keys, state=state)
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        assert cert is not None
        yield Server(f"https://127.0.0.1:{port}", overrides["tls_cert"], state, api_key, app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def as_json(response: httpx.Response) -> Any:
    return json.loads(response.content)


def ping_while_locked(state: SqliteServiceState | PostgresServiceState) -> bool:
    """``state.ping()`` run while another thread holds the store's lock, as a request's
    statement stalled on the database would: its answer. Fails if the ping waited for it."""
    held, release, answers = threading.Event(), threading.Event(), []

    def hold() -> None:
        with state._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        pinger = threading.Thread(target=lambda: answers.append(state.ping()))
        pinger.start()
        pinger.join(10)
        assert not pinger.is_alive(), "the ping waited for the store's lock"
    finally:
        release.set()
        holder.join()
    return bool(answers[0])
