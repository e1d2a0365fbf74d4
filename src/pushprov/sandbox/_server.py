"""``pushprov sandbox serve``: the sandbox over TLS in one process (sessions live in memory)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging

from ..hosting import ServiceConfig, bind, prepare, read_passphrase, serve_app
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ._app import create_sandbox_app
from ._core import SessionBook

__all__ = ["serve_sandbox"]

log = logging.getLogger("pushprov.sandbox")


def serve_sandbox(config: ServiceConfig, *, session_lifetime: _dt.timedelta) -> None:
    config = prepare(config, announce_certificate=False)
    backend = config.backend(default_store="sandbox-keystore.db")
    passphrase = read_passphrase(config.store_passphrase_file)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        return Keystore(
            backend.open_store(passphrase=passphrase), actor="sandbox", secret_cache=cache
        )

    open_keystore().close()  # fail now, not at the first request
    keys = StoreKeySource(open_keystore, Environment.SANDBOX, refresh=config.key_refresh_seconds)
    app = create_sandbox_app(
        keys=keys, keystore=open_keystore, sessions=SessionBook(session_lifetime)
    )
    config = dataclasses.replace(config, workers=1)
    sock = bind(config)
    log.warning("sandbox serving: Google's side for rehearsals, never for production",
                extra={"url": f"https://{config.host}:{sock.getsockname()[1]}"})  # fmt: skip
    serve_app(app, config, sock)
