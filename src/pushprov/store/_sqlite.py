"""The embedded store: one SQLite file (WAL, synchronous=FULL), secrets sealed at rest.

The tables are ``_schema``'s key tables with plain names (``meta``, ``keyring``, ``keys``,
``audit``); ``meta`` holds the schema version, kdf_log2n, kdf_salt and kek_check.
A store of schema version 1 (before the row MACs) is upgraded the first time it is opened with
its passphrase (``_upgrade``); one of version 2 gains version 3's ``custody`` column then too
(its rows' MACs stand: a row without custody is MACed as before).
``key_id`` is unique across environments, so one key can never serve sandbox and production.
Every commit is one ``BEGIN IMMEDIATE`` transaction that first checks the environment's version:
a crash leaves the old or the new version, and a stale writer gets ``StoreConflictError``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._errors import StoreConflictError, StoreCorruptError, StoreUnavailableError
from ._model import Change
from ._paths import private_database_file
from ._rows import SqlStore
from ._schema import KEY_TABLES, LATEST, SQLITE, added_columns, columns_added, create_statements
from ._sealing import DEFAULT_KDF_LOG2N, SecretBox, derive_kek, unlock

__all__ = ["SqliteStore", "run_in_transaction", "store_error"]

_SCHEMA_VERSION = str(LATEST).encode()
_SCHEMA_V1 = b"1"
_KNOWN_SCHEMAS = frozenset(str(version).encode() for version in range(1, LATEST + 1))


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
        try:
            connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as error:
            raise store_error(error) from None
        try:
            if on_connect is not None:
                on_connect(connection)
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit that returned survives power loss, not only a killed process.
            connection.execute("PRAGMA synchronous=FULL")
            # Erased secrets are overwritten in the file, not left in free pages.
            connection.execute("PRAGMA secure_delete=ON")
            if new:
                store = cls(connection, _initialise(connection, passphrase, kdf_log2n), path)
            else:
                box, schema, maced = _unlock(connection, passphrase)
                store = cls(connection, box, path)
                if not maced:
                    store._upgrade(schema)
                elif schema != _SCHEMA_VERSION:
                    store._add_columns(schema)
        except sqlite3.Error as error:
            connection.close()
            raise store_error(error) from None
        except BaseException:
            connection.close()
            raise
        return store

    # -- writes ------------------------------------------------------------------------------

    def _committed(self, change: Change) -> None:
        if change.erase:
            # Move erased pages out of the WAL into the (zeroed) main file and truncate the WAL.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore(path={str(self.path)!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _upgrade(self, schema: bytes) -> None:
        """A store from before the MACs: add their columns (schema 1), MAC every row as it
        stands and mark the store MACed (its KEK check), all in one transaction."""
        with self._transaction(write=True):
            self._columns_since(schema)
            self._mac_existing_rows()
            self._db.execute(
                "UPDATE meta SET value = ? WHERE name = 'kek_check'", (self._box.make_check(),)
            )

    def _add_columns(self, schema: bytes) -> None:
        """A MACed store of an older schema: the columns added since, in one transaction."""
        with self._transaction(write=True):
            self._columns_since(schema)

    def _columns_since(self, schema: bytes) -> None:
        if schema == _SCHEMA_VERSION:
            return
        present = {
            (table, str(row[1]))
            for table in KEY_TABLES
            for row in self._db.execute(f"PRAGMA table_info({table})")
        }
        for version in range(int(schema) + 1, LATEST + 1):
            # A column already there (a half-done upgrade by hand) is kept, not added twice.
            for table in KEY_TABLES:
                for column in columns_added(table, version):
                    if (table, column) not in present:
                        self._db.execute(
                            next(
                                s
                                for s in added_columns(SQLITE, (table,), version)
                                if f" ADD COLUMN {column} " in s
                            )
                        )
        self._db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (_SCHEMA_VERSION,))

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
            except sqlite3.IntegrityError:
                self._rollback()
                raise StoreConflictError("the change clashes with a stored record") from None
            except BaseException:
                self._rollback()
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise store_error(error) from None

    def _rollback(self) -> None:
        # A full disk or failing I/O may fail the rollback too; SQLite then rolls back itself.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


# What a failed SQLite call means for the store, by its primary result code. Unavailable: the
# file cannot be used now (another writer holds it past the wait, the disk is full, I/O fails,
# the file or its directory cannot be opened or written); a retry may succeed. Corrupt: the
# file is not a database or not ours (damaged pages, random bytes, a table or column missing:
# our statements are fixed, so SQLITE_ERROR at run time means the schema is not the one we made).
_UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_PERM,
})  # fmt: skip
_CORRUPT_CODES = frozenset({
    sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_SCHEMA,
    sqlite3.SQLITE_MISMATCH,
})  # fmt: skip


def store_error(error: sqlite3.Error) -> Exception:
    """What to raise for ``error``: ``StoreUnavailableError`` or ``StoreCorruptError`` by its
    result code, else ``error`` itself (a misuse of the driver is a bug, not the store's state).
    The message names the result code (``SQLITE_FULL``), never a statement or a value."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return error
    primary = code & 0xFF
    name = getattr(error, "sqlite_errorname", "SQLITE_UNKNOWN")
    if primary in _UNAVAILABLE_CODES:
        return StoreUnavailableError(f"the SQLite store cannot be used now ({name})")
    if primary in _CORRUPT_CODES:
        return StoreCorruptError(f"the SQLite store is damaged or not ours ({name})")
    return error


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


def _unlock(connection: sqlite3.Connection, passphrase: bytes) -> tuple[SecretBox, bytes, bool]:
    """The box, the schema version and whether the rows are MACed."""
    try:
        meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
    except sqlite3.Error as error:
        outcome = store_error(error)
        if isinstance(outcome, StoreCorruptError):
            raise StoreCorruptError("not a pushprov key store") from None
        raise outcome from None
    schema = meta.get("schema")
    if schema not in _KNOWN_SCHEMAS:
        raise StoreCorruptError("unknown key store schema")
    box, maced = unlock(meta, passphrase)
    if maced and schema == _SCHEMA_V1:
        raise StoreCorruptError("the key store schema does not match its MACs")
    return box, bytes(schema), maced
