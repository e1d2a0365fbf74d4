"""Building the service from its configuration (the backend's key store and state, the app),
and the checks `serve` makes before it says "serving"."""

from __future__ import annotations

import datetime as _dt
import shlex
from typing import Any

from .._errors import UsageError
from ..hosting import (
    ServiceConfig,
    configure_logging,
    init_command,
    keys_options,
    read_passphrase,
    worker_config,
)
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ._app import create_app

__all__ = ["build_app", "preflight", "worker_app"]


def preflight(config: ServiceConfig, *, at: _dt.datetime) -> list[str]:
    """Every check `serve` makes before it says "serving".

    Fatal, raised as one error naming the command that fixes it: no key store, no passphrase,
    a passphrase that does not open it, a store that cannot be read. Returned as warnings,
    because /readyz reports them and a key change is picked up while serving: a missing
    active key of ours or of Google's, no API client.
    """
    backend = config.backend()
    if backend.path is not None and not backend.path.exists():
        if config.store is None:
            remedy = f"run '{init_command(config)}' first"
        else:
            quoted = shlex.quote(str(backend.path))
            remedy = f"create it with 'pushprov keys generate --store {quoted}'"
        raise UsageError(f"no key store at {backend.path}: {remedy}")
    passphrase = read_passphrase(config.store_passphrase_file, backend)
    env = Environment(config.env)
    keystore = Keystore(backend.open_store(passphrase=passphrase), actor="pushprov-service")
    try:
        ring = keystore.snapshot(env)
        if config.format == "jwe":
            ours = ring.jwe_signing_key(at=at) is not None
            google = ring.jwe_recipient(at=at) is not None
        else:
            ours, google = bool(ring.signing_keys(at=at)), bool(ring.recipients(at=at))
    finally:
        keystore.close()
    flags = keys_options(config)
    warnings = []
    if not ours:
        warnings.append(
            f"no active {config.format} signing key of ours in {env.value}: "
            f"'pushprov keys generate ... {flags}' then 'pushprov keys promote KEY {flags}'"
        )
    if not google:
        warnings.append(
            f"no active Google {config.format} encryption key in {env.value}: "
            f"'pushprov keys import GOOGLE_KEY {flags}' then 'pushprov keys promote KEY {flags}'"
        )
    state = backend.open_state()
    try:
        if not any(client.revoked is None for client in state.list_clients()):
            warnings.append("no API client: 'pushprov clients add NAME' prints its key")
    finally:
        state.close()
    return warnings


def build_app(config: ServiceConfig) -> Any:
    backend = config.backend()
    passphrase = read_passphrase(config.store_passphrase_file, backend)

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
