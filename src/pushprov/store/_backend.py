"""The one place a store location picks its database: a ``postgresql://`` (or ``postgres://``)
URL is the shared PostgreSQL backend, anything else a path to the embedded SQLite one.

A ``Backend`` gives everything that lives there: the key store, the service's state (clients,
idempotency, rate limits) and, where other instances can change keys, a keyring watcher.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from .._errors import UsageError
from ._model import Store
from ._postgres import KeyringWatcher, PostgresStore, migrate, redacted_url
from ._sealing import DEFAULT_KDF_LOG2N
from ._sqlite import SqliteStore
from ._state import PostgresServiceState, ServiceState, SqliteServiceState

__all__ = ["Backend", "open_backend", "open_store"]


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where keys and service state live. Build one with ``open_backend``."""

    #: Whether several instances share it (and so must hear of each other's key changes).
    shared: bool
    _location: str | Path = dataclasses.field(repr=False)  # a URL may hold a password
    _state_file: Path | None = dataclasses.field(default=None, repr=False)

    def open_store(
        self, *, passphrase: bytes, create: bool = False, kdf_log2n: int = DEFAULT_KDF_LOG2N
    ) -> Store:
        if self.shared:
            return PostgresStore.open(
                str(self._location), passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
            )
        return SqliteStore.open(
            self._location, passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
        )

    def open_state(self) -> ServiceState:
        """Clients, idempotency and rate limits: in the shared database (every instance sees
        the same), else in the embedded state file."""
        if self.shared:
            return PostgresServiceState(str(self._location))
        if self._state_file is None:
            raise UsageError("this embedded store was opened without a service state file")
        return SqliteServiceState(self._state_file)

    def watch(self, on_change: Callable[[str | None], None]) -> KeyringWatcher | None:
        """A started watcher calling ``on_change(env)`` on each committed keyring change made
        anywhere; None for the embedded store (its one host's processes poll the file)."""
        if not self.shared:
            return None
        return KeyringWatcher(str(self._location), on_change).start()

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the shared schema: (version before, after)."""
        if not self.shared:
            raise UsageError("store migrate needs a postgresql:// URL (SQLite needs no migration)")
        return migrate(str(self._location))

    @property
    def name(self) -> str:
        """The location for messages: a path, or the URL without its password."""
        return redacted_url(str(self._location)) if self.shared else str(self._location)


def open_backend(location: str | os.PathLike[str], *, state_file: Path | None = None) -> Backend:
    """The backend at ``location``; ``state_file`` is where the embedded backend keeps the
    service's state (the shared one keeps it in its database)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        return Backend(True, location)
    return Backend(False, Path(location), state_file)


def open_store(
    location: str | os.PathLike[str],
    *,
    passphrase: bytes,
    create: bool = False,
    kdf_log2n: int = DEFAULT_KDF_LOG2N,
) -> Store:
    """``PostgresStore`` for a ``postgresql://`` (or ``postgres://``) URL, else ``SqliteStore``."""
    return open_backend(location).open_store(
        passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
    )
