"""Building the service from its configuration: the key store, the state store, the app."""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ..keys import Environment, Keystore, SecretCache, StoreKeySource
from ..store import KeyringWatcher, is_postgres_url, open_store, redacted_url
from ..store._paths import passphrase_file_beside, read_passphrase_beside
from ._app import create_app
from ._config import ServiceConfig, default_data_dir
from ._state import PostgresServiceState, ServiceState, SqliteServiceState

__all__ = [
    "build_app",
    "init_command",
    "keys_options",
    "preflight",
    "service_state",
    "store_passphrase",
    "store_path",
]

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


def store_passphrase(
    config: ServiceConfig,
    environ: dict[str, str] | None = None,
    *,
    location: str | Path | None = None,
) -> bytes:
    """store_passphrase_file, else ``$PUSHPROV_STORE_PASSPHRASE``, else the file `pushprov
    init` made beside the store file (``location``, default the service's key store)."""
    environ = dict(os.environ) if environ is None else environ
    if config.store_passphrase_file is not None:
        try:
            lines = config.store_passphrase_file.read_bytes().splitlines()
        except OSError:
            raise UsageError("cannot read store_passphrase_file") from None
        return lines[0] if lines else b""
    if PASSPHRASE_ENV in environ:
        return environ[PASSPHRASE_ENV].encode()
    location = store_path(config) if location is None else location
    if not is_postgres_url(location):
        found = read_passphrase_beside(Path(location))
        if found is not None:
            return found
    beside = (
        ""
        if is_postgres_url(location)
        else f", or keep it in {passphrase_file_beside(Path(location))} as 'pushprov init' does"
    )
    raise UsageError(
        f"the key store needs its passphrase: set ${PASSPHRASE_ENV} or store_passphrase_file"
        + beside
    )


def keys_options(config: ServiceConfig) -> str:
    """The options that point `pushprov keys` at the store ``config`` serves."""
    words = ["--env", config.env]
    if is_postgres_url(config.store):
        words += ["--store", shlex.quote(redacted_url(str(config.store)))]
    elif config.store is not None or config.data_dir != default_data_dir():
        words += ["--store", shlex.quote(str(store_path(config)))]
    return " ".join(words)


def init_command(config: ServiceConfig) -> str:
    """The `pushprov init` line that sets up what ``config`` serves."""
    words = ["pushprov", "init"]
    if config.env != "sandbox":
        words += ["--env", config.env]
    if config.data_dir != default_data_dir():
        words += ["--data-dir", shlex.quote(str(config.data_dir))]
    return " ".join(words)


def preflight(config: ServiceConfig, *, at: _dt.datetime) -> list[str]:
    """Every check `serve` makes before it says "serving".

    Fatal, raised as one error naming the command that fixes it: no key store, no passphrase,
    a passphrase that does not open it, a store that cannot be read. Returned as warnings,
    because /readyz reports them and a key change is picked up while serving: a missing
    active key of ours or of Google's, no API client.
    """
    location = store_path(config)
    if isinstance(location, Path) and not location.exists():
        if config.store is None:
            remedy = f"run '{init_command(config)}' first"
        else:
            remedy = f"create it with 'pushprov keys generate --store {shlex.quote(str(location))}'"
        raise UsageError(f"no key store at {location}: {remedy}")
    passphrase = store_passphrase(config)
    env = Environment(config.env)
    keystore = Keystore(open_store(location, passphrase=passphrase), actor="pushprov-service")
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
    state = service_state(config)
    try:
        if not any(client.revoked is None for client in state.list_clients()):
            warnings.append("no API client: 'pushprov clients add NAME' prints its key")
    finally:
        state.close()
    return warnings


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
