"""Building the service from its configuration: the backend's key store and state, the app."""

from __future__ import annotations

from typing import Any

from ..hosting import ServiceConfig, configure_logging, read_passphrase, worker_config
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ._app import create_app

__all__ = ["build_app", "worker_app"]


def build_app(config: ServiceConfig) -> Any:
    backend = config.backend()
    passphrase = read_passphrase(config.store_passphrase_file)

    def open_keystore(cache: SecretCache) -> Keystore:
        return Keystore(
            backend.open_store(passphrase=passphrase), actor="pushprov-service", secret_cache=cache
        )

    open_keystore(SecretCache()).close()  # fail at start, not at the first request
    env = Environment(config.env)
    keys = StoreKeySource(open_keystore, env, refresh=config.key_refresh_seconds)

    # Where other instances change keys, hear of it at once; polling stays as the fallback
    # (the watcher reconnects, the database may restart).
    def on_change(changed: str | None) -> None:
        if changed is None or changed == env.value:
            keys.invalidate()

    backend.watch(on_change)
    return create_app(config, keys=keys, state=backend.open_state())


def worker_app() -> Any:
    """Entry point of each worker process."""
    config = worker_config()
    configure_logging(config.log_level)
    return build_app(config)
