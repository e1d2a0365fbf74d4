"""The embedded store: one SQLite file (WAL, synchronous=FULL), secrets sealed at rest.

Schema (version 2)::

    meta    (name TEXT PRIMARY KEY, value BLOB)          schema, kdf_log2n, kdf_salt, kek_check
    keyring (env TEXT PRIMARY KEY, version INTEGER, audit_seq INTEGER, audit_head TEXT,
             mac BLOB, audit_mac BLOB)
    keys    (key_id TEXT PRIMARY KEY, env, format, owner, roles, label, created, expires,
             state, transitions (JSON), last_used, public BLOB, sealed_secret BLOB NULL,
             written INTEGER, mac BLOB)
    audit   (env, seq, at, ref_at, actor, action, key_id, from_state, to_state, reason,
             version, prev_hash, hash, mac BLOB; PRIMARY KEY (env, seq))

Version 2 added the MACs (``_integrity``) and the audit's reference time; a version 1 store is
upgraded the first time it is opened with its passphrase (``_upgrade``).

``key_id`` is unique across environments, so one key can never serve sandbox and production.
Every commit is one ``BEGIN IMMEDIATE`` transaction that first checks the environment's version:
a crash leaves the old or the new version, and a stale writer gets ``StoreConflictError``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from .._errors import UsageError
from ._errors import StoreConflictError, StoreCorruptError, StoreInsecureError
from ._model import AuditEntry, Change, StoreView
from ._rows import AUDIT_READ, HEAD_READ, KEY_READ, ChangeWriter, audit_entries, store_view
from ._sealing import DEFAULT_KDF_LOG2N, SecretBox, derive_kek, secret_aad, unlock

__all__ = ["SqliteStore", "check_private_path"]

_SCHEMA_VERSION = b"2"
_SCHEMA_V1 = b"1"
# Version 1 to 2: the MAC columns and the audit's reference time (then ``_mac_existing_rows``).
_UPGRADE_V1 = (
    "ALTER TABLE keyring ADD COLUMN mac BLOB",
    "ALTER TABLE keyring ADD COLUMN audit_mac BLOB",
    "ALTER TABLE keys ADD COLUMN written INTEGER",
    "ALTER TABLE keys ADD COLUMN mac BLOB",
    "ALTER TABLE audit ADD COLUMN ref_at INTEGER",
    "ALTER TABLE audit ADD COLUMN mac BLOB",
)
_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE keyring (
    env TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL,
    audit_head TEXT,
    mac BLOB,
    audit_mac BLOB
);
CREATE TABLE keys (
    key_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    format TEXT NOT NULL,
    owner TEXT NOT NULL,
    roles TEXT NOT NULL,
    label TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    state TEXT NOT NULL,
    transitions TEXT NOT NULL,
    last_used INTEGER,
    public BLOB NOT NULL,
    sealed_secret BLOB,
    written INTEGER,
    mac BLOB
);
CREATE INDEX keys_env ON keys (env);
CREATE TABLE audit (
    env TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    ref_at INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    key_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    reason TEXT NOT NULL,
    version INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    mac BLOB,
    PRIMARY KEY (env, seq)
);
"""


def check_private_path(path: Path, *, directory: bool) -> None:
    """Refuse a path that is a symlink, not ours, or grants group/other any access."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    kind = "directory" if directory else "file"
    if stat.S_ISLNK(info.st_mode):
        raise StoreInsecureError(f"store {kind} {path} is a symbolic link")
    if (stat.S_ISDIR(info.st_mode)) != directory:
        raise StoreInsecureError(f"store path {path} is not a {kind}")
    if info.st_uid != os.geteuid():
        raise StoreInsecureError(f"store {kind} {path} belongs to another user")
    if info.st_mode & 0o077:
        wanted = "0700" if directory else "0600"
        raise StoreInsecureError(
            f"store {kind} {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}; want {wanted})"
        )


class SqliteStore(ChangeWriter):
    """``Store`` on one SQLite file. Open with ``SqliteStore.open``; one per thread."""

    _MARK = "?"
    _KEYS = "keys"
    _KEYRING = "keyring"
    _AUDIT = "audit"

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
        directory = path.parent
        if create and not directory.exists():
            directory.mkdir(mode=0o700, parents=True)
        check_private_path(directory, directory=True)
        new = not path.exists()
        if new:
            if not create:
                raise UsageError(f"no key store at {path}")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError as error:
                raise UsageError(f"cannot create {path}: {error.strerror}") from None
            os.close(fd)
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            check_private_path(candidate, directory=False)
        connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
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
        except BaseException:
            connection.close()
            raise
        return store

    # -- reads -------------------------------------------------------------------------------

    def read(self, env: str) -> StoreView:
        with self._transaction("BEGIN"):
            head = self._db.execute(
                f"SELECT {HEAD_READ} FROM keyring WHERE env = ?",  # noqa: S608
                (env,),
            ).fetchone()
            rows = self._db.execute(
                f"SELECT {KEY_READ} FROM keys WHERE env = ? ORDER BY created, key_id",  # noqa: S608
                (env,),
            ).fetchall()
        return store_view(env, head, rows, self._box.rows)

    def load_secret(self, env: str, key_id: str) -> bytes | None:
        found = self._db.execute(
            "SELECT sealed_secret FROM keys WHERE env = ? AND key_id = ?", (env, key_id)
        ).fetchone()
        if found is None or found[0] is None:
            return None
        return self._box.open(bytes(found[0]), secret_aad(env, key_id))

    def audit_log(self, env: str) -> tuple[AuditEntry, ...]:
        with self._transaction("BEGIN"):
            head = self._db.execute(
                f"SELECT {HEAD_READ} FROM keyring WHERE env = ?",  # noqa: S608
                (env,),
            ).fetchone()
            rows = self._db.execute(
                f"SELECT {AUDIT_READ} FROM audit WHERE env = ? ORDER BY seq",  # noqa: S608
                (env,),
            ).fetchall()
        return audit_entries(env, head, rows, self._box.rows)

    # -- writes ------------------------------------------------------------------------------

    def commit(self, change: Change) -> int:
        env = change.env
        with self._transaction("BEGIN IMMEDIATE"):
            head = self._db.execute("SELECT version FROM keyring WHERE env = ?", (env,)).fetchone()
            current = 0 if head is None else int(head[0])
            self._check_base(change, current)
            self._check_head(env)
            self._write_change(change, current + 1)
            last = change.audit[-1] if change.audit else None
            self._db.execute(
                "INSERT INTO keyring (env, version, audit_seq, audit_head) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (env) DO UPDATE SET version = excluded.version, "
                "audit_seq = coalesce(?, audit_seq), audit_head = coalesce(?, audit_head)",
                (
                    env,
                    current + 1,
                    0 if last is None else last.seq,
                    None if last is None else last.hash,
                    None if last is None else last.seq,
                    None if last is None else last.hash,
                ),
            )
            self._seal_head(env)
        if change.erase:
            # Move erased pages out of the WAL into the (zeroed) main file and truncate the WAL.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return current + 1

    def record_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        if not key_ids:
            return
        with self._transaction("BEGIN IMMEDIATE"):
            self._note_use(env, key_ids, at)

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore(path={str(self.path)!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _upgrade(self, schema: bytes) -> None:
        """A store from before the MACs: add their columns (schema 1), MAC every row as it
        stands and mark the store MACed, all in one transaction."""
        with self._transaction("BEGIN IMMEDIATE"):
            if schema == _SCHEMA_V1:
                for statement in _UPGRADE_V1:
                    self._db.execute(statement)
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE name = 'schema'", (_SCHEMA_VERSION,)
                )
            self._mac_existing_rows()
            self._db.execute(
                "UPDATE meta SET value = ? WHERE name = 'kek_check'", (self._box.make_check(),)
            )

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        self._db.execute(begin)
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


def _initialise(connection: sqlite3.Connection, passphrase: bytes, log2n: int) -> SecretBox:
    salt = os.urandom(16)
    box = SecretBox(derive_kek(passphrase, salt, log2n))
    connection.execute("BEGIN IMMEDIATE")
    try:
        # One statement at a time: executescript() would commit half-way.
        for statement in filter(str.strip, _SCHEMA.split(";")):
            connection.execute(statement)
        connection.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [
                ("schema", _SCHEMA_VERSION),
                ("kdf_log2n", str(log2n).encode()),
                ("kdf_salt", salt),
                ("kek_check", box.make_check()),
            ],
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return box


def _unlock(connection: sqlite3.Connection, passphrase: bytes) -> tuple[SecretBox, bytes, bool]:
    """The box, the schema version and whether the rows are MACed."""
    try:
        meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        raise StoreCorruptError("not a pushprov key store") from None
    schema = meta.get("schema")
    if schema not in (_SCHEMA_VERSION, _SCHEMA_V1):
        raise StoreCorruptError("unknown key store schema")
    box, maced = unlock(meta, passphrase)
    if maced and schema != _SCHEMA_VERSION:
        raise StoreCorruptError("the key store schema does not match its MACs")
    return box, bytes(schema), maced
