"""``pushprov sandbox serve``: the sandbox over TLS in one process (sessions live in memory)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import shlex

from .._errors import UsageError
from ..hosting import (
    ServiceConfig,
    bind,
    configure_logging,
    read_passphrase,
    serve_app,
    with_certificate,
)
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ._app import create_sandbox_app
from ._core import SessionBook

__all__ = ["serve_sandbox"]

log = logging.getLogger("pushprov.sandbox")


def serve_sandbox(config: ServiceConfig, *, session_lifetime: _dt.timedelta) -> None:
    configure_logging(config.log_level)
    backend = config.backend(default_store="sandbox-keystore.db")
    if backend.path is not None and not backend.path.exists():
        raise UsageError(
            f"no sandbox key store at {backend.path}: make Google's side keys with 'pushprov "
            f"keys generate --store {shlex.quote(str(backend.path))} --env sandbox ...'"
        )
    passphrase = read_passphrase(config.store_passphrase_file, backend)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        return Keystore(
            backend.open_store(passphrase=passphrase), actor="sandbox", secret_cache=cache
        )

    open_keystore().close()  # fail now, not at the first request
    config = with_certificate(dataclasses.replace(config, workers=1), announce=False)
    sock = bind(config)
    keys = StoreKeySource(open_keystore, Environment.SANDBOX, refresh=config.key_refresh_seconds)
    app = create_sandbox_app(
        keys=keys, keystore=open_keystore, sessions=SessionBook(session_lifetime)
    )
    log.warning("sandbox serving: Google's side for rehearsals, never for production",
                extra={"url": f"https://{config.host}:{sock.getsockname()[1]}"})  # fmt: skip
    serve_app(app, config, sock)
