"""One place that turns a store location into a store: a ``postgresql://`` URL or a file path."""

from __future__ import annotations

import os

from ._model import Store
from ._postgres import PostgresStore, is_postgres_url
from ._sealing import DEFAULT_KDF_LOG2N
from ._sqlite import SqliteStore

__all__ = ["open_store"]


def open_store(
    location: str | os.PathLike[str],
    *,
    passphrase: bytes,
    create: bool = False,
    kdf_log2n: int = DEFAULT_KDF_LOG2N,
) -> Store:
    """``PostgresStore`` for a ``postgresql://`` (or ``postgres://``) URL, else ``SqliteStore``."""
    if is_postgres_url(location):
        return PostgresStore.open(
            str(location), passphrase=passphrase, create=create, kdf_log2n=kdf_log2n
        )
    return SqliteStore.open(location, passphrase=passphrase, create=create, kdf_log2n=kdf_log2n)
