"""The one place a store location picks its database: a ``postgresql://`` (or ``postgres://``)
URL is the shared PostgreSQL backend, anything else a path to the embedded SQLite one.

A ``Backend`` gives everything that lives there: the key store, the service's state (clients,
idempotency, rate limits) and, where other instances can change keys, a keyring watcher.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import UsageError
from ._model import Store
from ._sealing import DEFAULT_KDF_LOG2N
from ._sqlite import SqliteStore
from ._state import ServiceState, SqliteServiceState

if TYPE_CHECKING:
    from ._postgres import KeyringWatcher

__all__ = ["Backend", "open_backend", "open_store"]


class Backend(abc.ABC):
    """Where keys and service state live. Build one with ``open_backend``."""

    #: Whether several instances share it (and so must hear of each other's key changes).
    shared: bool
    #: The location for messages: a path, or the URL without its password.
    name: str
    #: The embedded store's file; None for the shared one.
    path: Path | None

    @abc.abstractmethod
    def open_store(
        self, *, passphrase: bytes, create: bool = False, kdf_log2n: int = DEFAULT_KDF_LOG2N
    ) -> Store: ...

    @abc.abstractmethod
    def open_state(self) -> ServiceState:
        """Clients, idempotency and rate limits."""

    @abc.abstractmethod
    def watch(self, on_change: Callable[[str | None], None]) -> KeyringWatcher | None:
        """A started watcher calling ``on_change(env)`` on each keyring change committed
        anywhere, or None where only this host's processes write (they poll the file)."""

    @abc.abstractmethod
    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema: (version before, after)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _Embedded(Backend):
    """SQLite: the key store's file, and the service's state in a file of its own."""

    shared = False

    def __init__(self, path: Path, state_file: Path | None) -> None:
        self.path = self._file = path
        self._state_file = state_file
        self.name = str(path)

    def open_store(
        self, *, passphrase: bytes, create: bool = False, kdf_log2n: int = DEFAULT_KDF_LOG2N
    ) -> Store:
        return SqliteStore.open(
            self._file, passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
        )

    def open_state(self) -> ServiceState:
        if self._state_file is None:
            raise UsageError("this embedded store was opened without a service state file")
        return SqliteServiceState(self._state_file)

    def watch(self, on_change: Callable[[str | None], None]) -> KeyringWatcher | None:
        return None

    def migrate(self) -> tuple[int, int]:
        raise UsageError("store migrate needs a postgresql:// URL (SQLite needs no migration)")


def open_backend(location: str | os.PathLike[str], *, state_file: Path | None = None) -> Backend:
    """The backend at ``location``; ``state_file`` is where the embedded backend keeps the
    service's state (the shared one keeps it in its database)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from ._shared import SharedBackend  # psycopg: only for a PostgreSQL location

        return SharedBackend(location)
    return _Embedded(Path(location), state_file)


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
