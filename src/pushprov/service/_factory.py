"""Building the service from its configuration: the key store, the state store, the app."""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ..keys import Environment, Format, Keyring, Keystore, SecretCache, State, findings
from ..store import KeyringWatcher, is_postgres_url, open_store
from ._app import create_app
from ._config import ServiceConfig
from ._keysource import KeyStatus, ServiceKeys
from ._state import PostgresServiceState, ServiceState, SqliteServiceState

__all__ = ["StoreKeySource", "build_app", "service_state", "store_passphrase", "store_path"]

PASSPHRASE_ENV = "PUSHPROV_STORE_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
_USE_RECORD_INTERVAL = 60.0  # seconds between drain-window use records per key and process


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


class StoreKeySource:
    """Keys from the key store, re-read every ``refresh`` seconds and swapped in one step.

    A rotation made through any process (CLI, another instance) is picked up without a
    restart: at the latest ``refresh`` seconds after its commit, sooner when ``invalidate`` is
    called (PostgreSQL: on each NOTIFY). Each thread gets its own store connection (SQLite
    connections are per thread); parsed secret keys are shared through one cache.
    """

    def __init__(
        self,
        open_keystore: Callable[[SecretCache], Keystore],
        env: Environment,
        *,
        refresh: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_keystore
        self._env = env
        self._refresh = refresh
        self._monotonic = monotonic
        self._cache = SecretCache()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._keys: ServiceKeys | None = None
        self._loaded = float("-inf")
        # Bumped by invalidate(); a read that began before the bump does not count as fresh.
        self._generation = 0
        self._loaded_generation = 0
        self._recorded: dict[str, float] = {}

    def _keystore(self) -> Keystore:
        keystore: Keystore | None = getattr(self._local, "keystore", None)
        if keystore is None:
            keystore = self._open(self._cache)
            self._local.keystore = keystore
        return keystore

    def invalidate(self) -> None:
        """Re-read the keyring on the next request (a new version was committed)."""
        with self._lock:
            self._generation += 1

    def current(self, at: _dt.datetime) -> ServiceKeys:
        now = self._monotonic()
        keys = self._keys
        generation = self._generation
        if (
            keys is None
            or generation != self._loaded_generation
            or now - self._loaded >= self._refresh
        ):
            keys = _service_keys(self._keystore().snapshot(self._env), at)
            with self._lock:
                self._keys, self._loaded, self._loaded_generation = keys, now, generation
        return keys

    def note_use(self, key_ids: Iterable[str], at: _dt.datetime) -> None:
        """Feed the drain window (a key in use must not be retired), at most once a minute."""
        now = self._monotonic()
        due = [
            k for k in key_ids if now - self._recorded.get(k, float("-inf")) >= _USE_RECORD_INTERVAL
        ]
        if due:
            self._keystore().record_use(self._env, due, at=at)
            for key_id in due:
                self._recorded[key_id] = now


def _service_keys(ring: Keyring, at: _dt.datetime) -> ServiceKeys:
    """Both formats side by side; the envelope a request asks for picks its keys by type."""
    published = tuple(
        ring.certificate(record).armor()
        if record.format is Format.PGP
        else ring.public_jwk(record).to_json()
        for record in ring.in_state(State.ACTIVE)
        if record.ours
    )
    jwe_signer, jwe_recipient = ring.jwe_signing_key(at=at), ring.jwe_recipient(at=at)
    inventory = tuple(
        KeyStatus(
            id=record.key_id,
            format=record.format.value,
            owner=record.owner,
            roles=tuple(sorted(role.value for role in record.roles)),
            state=record.state.value,
            expires=record.expires,
            created=record.created,
            transitions=tuple((state.value, when) for state, when in record.transitions),
        )
        for record in ring.records
        if record.state is not State.DESTROYED
    )
    return ServiceKeys(
        version=str(ring.version),
        signers=(*ring.signing_keys(at=at), *(() if jwe_signer is None else (jwe_signer,))),
        recipients=(*ring.recipients(at=at), *(() if jwe_recipient is None else (jwe_recipient,))),
        decryptors=(*ring.decryption_keys(), *ring.jwe_decryption_keys()),
        verifiers=(*ring.verification_certs(), *ring.jwe_verification_keys()),
        published=published,
        inventory=inventory,
        warnings=tuple(finding.message for finding in findings(ring.records, at)),
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
