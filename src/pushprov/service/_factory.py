"""Building the service from its configuration: the key store, the state store, the app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ..store import KeyringWatcher, is_postgres_url, open_store
from ._app import create_app
from ._config import ServiceConfig
from ._state import PostgresServiceState, ServiceState, SqliteServiceState

__all__ = ["build_app", "service_state", "store_passphrase", "store_path"]

PASSPHRASE_ENV = "PUSHPROV_STORE_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


def store_path(config: ServiceConfig) -> str | Path:
    """The key store: a ``postgresql://`` URL as given, else a file (default in data_dir)."""
    if is_postgres_url(config.store):
        return str(config.store)
    return Path(config.store) if config.store else config.data_dir / "keystore.db"


def service_state(config: ServiceConfig) -> ServiceState:
    """Clients, idempotency and rate limits: in the PostgreSQL store's database when there is
    one (shared by every instance), else in ``service.sqlite`` in the data directory."""
    if is_postgres_url(config.store):
        return PostgresServiceState(str(config.store))
    return SqliteServiceState(config.data_dir / "service.sqlite")


def store_passphrase(config: ServiceConfig, environ: dict[str, str] | None = None) -> bytes:
    environ = dict(os.environ) if environ is None else environ
    if config.store_passphrase_file is not None:
        try:
            lines = config.store_passphrase_file.read_bytes().splitlines()
        except OSError:
            raise UsageError("cannot read store_passphrase_file") from None
        return lines[0] if lines else b""
    if PASSPHRASE_ENV in environ:
        return environ[PASSPHRASE_ENV].encode()
    raise UsageError(
        f"the key store needs a passphrase: ${PASSPHRASE_ENV} or store_passphrase_file"
    )


def build_app(config: ServiceConfig) -> Any:
    location = store_path(config)
    passphrase = store_passphrase(config)

    def open_keystore(cache: SecretCache) -> Keystore:
        return Keystore(
            open_store(location, passphrase=passphrase),
            actor="pushprov-service",
            secret_cache=cache,
        )

    open_keystore(SecretCache()).close()  # fail at start, not at the first request
    env = Environment(config.env)
    keys = StoreKeySource(open_keystore, env, refresh=config.key_refresh_seconds)
    if isinstance(location, str):
        # Polling stays as the fallback (the watcher reconnects, the database may restart).

        def on_change(changed: str | None) -> None:
            if changed is None or changed == env.value:
                keys.invalidate()

        KeyringWatcher(location, on_change).start()
    return create_app(config, keys=keys, state=service_state(config))
