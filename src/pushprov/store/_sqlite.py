"""The embedded store: one SQLite file (WAL, synchronous=FULL), secrets sealed at rest.

The tables are ``_schema``'s key tables with plain names (``meta``, ``keyring``, ``keys``,
``audit``); ``meta`` holds the schema version, kdf_log2n, kdf_salt and kek_check.
``key_id`` is unique across environments, so one key can never serve sandbox and production.
Every commit is one ``BEGIN IMMEDIATE`` transaction that first checks the environment's version:
a crash leaves the old or the new version, and a stale writer gets ``StoreConflictError``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from ._errors import StoreConflictError, StoreCorruptError
from ._model import Change
from ._paths import private_database_file
from ._rows import SqlStore
from ._schema import KEY_TABLES, SQLITE, create_statements
from ._sealing import DEFAULT_KDF_LOG2N, SecretBox, derive_kek, unlock

__all__ = ["SqliteStore", "run_in_transaction"]

_SCHEMA_VERSION = b"1"


class SqliteStore(SqlStore):
    """``Store`` on one SQLite file. Open with ``SqliteStore.open``; one per thread."""

    _dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection, box: SecretBox, path: Path) -> None:
        self._db = connection
        self._box = box
        self.path = path

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        passphrase: bytes,
        create: bool = False,
        kdf_log2n: int = DEFAULT_KDF_LOG2N,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> SqliteStore:
        """Open (or, with ``create``, create) the store at ``path``.

        The directory is created 0700 and the file 0600 before SQLite touches it; an existing
        one that group or others may access is refused. ``kdf_log2n`` applies to new stores
        only. ``on_connect`` receives the connection first (tracing, fault injection).
        """
        path = Path(path)
        new = private_database_file(path, create=create)
        connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        try:
            if on_connect is not None:
                on_connect(connection)
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit that returned survives power loss, not only a killed process.
            connection.execute("PRAGMA synchronous=FULL")
            # Erased secrets are overwritten in the file, not left in free pages.
            connection.execute("PRAGMA secure_delete=ON")
            box = _initialise(connection, passphrase, kdf_log2n) if new else None
            if box is None:
                box = _unlock(connection, passphrase)
        except BaseException:
            connection.close()
            raise
        return cls(connection, box, path)

    # -- writes ------------------------------------------------------------------------------

    def _committed(self, change: Change) -> None:
        if change.erase:
            # Move erased pages out of the WAL into the (zeroed) main file and truncate the WAL.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def record_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        if not key_ids:
            return
        with self._transaction(write=True):
            self._db.executemany(
                "UPDATE keys SET last_used = max(coalesce(last_used, 0), ?) "
                "WHERE env = ? AND key_id = ?",
                [(at, env, key_id) for key_id in sorted(key_ids)],
            )

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore(path={str(self.path)!r})"

    # -- helpers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except sqlite3.IntegrityError:
            self._db.execute("ROLLBACK")
            raise StoreConflictError("the change clashes with a stored record") from None
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def run_in_transaction(
    connection: sqlite3.Connection, statements: Iterable[tuple[str, tuple[object, ...]]]
) -> None:
    """``statements`` (SQL, parameters) all or none, in one write transaction, where
    ``executescript()`` would commit half-way. The connection must be in autocommit mode
    (``isolation_level=None``)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement, params in statements:
            connection.execute(statement, params)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _initialise(connection: sqlite3.Connection, passphrase: bytes, log2n: int) -> SecretBox:
    salt = os.urandom(16)
    box = SecretBox(derive_kek(passphrase, salt, log2n))
    meta = {
        "schema": _SCHEMA_VERSION,
        "kdf_log2n": str(log2n).encode(),
        "kdf_salt": salt,
        "kek_check": box.make_check(),
    }
    run_in_transaction(connection, [
        *((statement, ()) for statement in create_statements(SQLITE, KEY_TABLES)),
        *(("INSERT INTO meta (name, value) VALUES (?, ?)", row) for row in meta.items()),
    ])  # fmt: skip
    return box


def _unlock(connection: sqlite3.Connection, passphrase: bytes) -> SecretBox:
    try:
        meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        raise StoreCorruptError("not a pushprov key store") from None
    if meta.get("schema") != _SCHEMA_VERSION:
        raise StoreCorruptError("unknown key store schema")
    return unlock(meta, passphrase)
