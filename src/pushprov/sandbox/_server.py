"""``pushprov sandbox serve``: the sandbox over TLS in one process (sessions live in memory)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import shlex
from pathlib import Path

import uvicorn

from .._clock import now
from .._errors import UsageError
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ..service import ServiceConfig, configure_logging, dev_certificate
from ..service._factory import store_passphrase
from ..service._server import bind, check_tls_files, uvicorn_config
from ..store import is_postgres_url, open_store
from ._app import create_sandbox_app
from ._core import SessionBook

__all__ = ["sandbox_store_path", "serve_sandbox"]

log = logging.getLogger("pushprov.sandbox")


def sandbox_store_path(config: ServiceConfig) -> str:
    return config.store or str(config.data_dir / "sandbox-keystore.db")


def serve_sandbox(config: ServiceConfig, *, session_lifetime: _dt.timedelta) -> None:
    configure_logging(config.log_level)
    path = sandbox_store_path(config)
    if not is_postgres_url(path) and not Path(path).exists():
        raise UsageError(
            f"no sandbox key store at {path}: make Google's side keys with 'pushprov keys "
            f"generate --store {shlex.quote(path)} --env sandbox ...'"
        )
    passphrase = store_passphrase(config, location=path)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        return Keystore(
            open_store(path, passphrase=passphrase), actor="sandbox", secret_cache=cache
        )

    open_keystore().close()  # fail now, not at the first request
    if config.tls_cert is None:
        cert, key, _ = dev_certificate(config.data_dir, now=now())
        config = dataclasses.replace(config, tls_cert=cert, tls_key=key)
    assert config.tls_cert is not None and config.tls_key is not None
    check_tls_files(config.tls_cert, config.tls_key, None)
    sock = bind(config.host, config.port)
    keys = StoreKeySource(open_keystore, Environment.SANDBOX, refresh=config.key_refresh_seconds)
    app = create_sandbox_app(
        keys=keys, keystore=open_keystore, sessions=SessionBook(session_lifetime)
    )
    single = dataclasses.replace(config, workers=1)
    log.warning("sandbox serving: Google's side for rehearsals, never for production",
                extra={"url": f"https://{config.host}:{sock.getsockname()[1]}"})  # fmt: skip
    uvicorn.Server(uvicorn_config(app, single)).run(sockets=[sock])
