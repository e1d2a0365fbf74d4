"""The shared backend: keys and the service's state in one PostgreSQL database, for every
instance. ``open_backend`` imports this module (and psycopg with it) only for a
``postgresql://`` location."""

from __future__ import annotations

from collections.abc import Callable

from ._backend import Backend
from ._model import Store
from ._postgres import KeyringWatcher, PostgresStore, migrate, redacted_url
from ._sealing import DEFAULT_KDF_LOG2N
from ._state import ServiceState
from ._state_postgres import PostgresServiceState

__all__ = ["SharedBackend"]


class SharedBackend(Backend):
    """PostgreSQL: keys and the service's state in one database, for every instance."""

    shared = True

    def __init__(self, url: str) -> None:
        self._url = url  # may hold a password: never shown
        self.name = redacted_url(url)
        self.path = None

    def open_store(
        self, *, passphrase: bytes, create: bool = False, kdf_log2n: int = DEFAULT_KDF_LOG2N
    ) -> Store:
        return PostgresStore.open(
            self._url, passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
        )

    def open_state(self) -> ServiceState:
        return PostgresServiceState(self._url)

    def watch(self, on_change: Callable[[str | None], None]) -> KeyringWatcher | None:
        return KeyringWatcher(self._url, on_change).start()

    def migrate(self) -> tuple[int, int]:
        return migrate(self._url)
