"""The shared store: PostgreSQL (psycopg 3) for several service instances, secrets sealed at rest.

Schema (migrations 1 and 2; ``pushprov store migrate`` applies them, ``PostgresStore.open``
checks them)::

    pushprov_schema      (version PRIMARY KEY, applied_at)        one row per applied migration
    pushprov_meta        (name PRIMARY KEY, value BYTEA)          kdf_log2n, kdf_salt, kek_check,
                                                                  service_hmac_key
    pushprov_keyring     (env PRIMARY KEY, version, audit_seq, audit_head, mac, audit_mac)
    pushprov_keys        (key_id PRIMARY KEY, env, format, owner, roles, label, created,
                          expires, state, transitions (JSON text), last_used, public BYTEA,
                          sealed_secret BYTEA NULL, written, mac)
    pushprov_audit       (env, seq, at, ref_at, actor, action, key_id, from_state, to_state,
                          reason, version, prev_hash, hash, mac; PRIMARY KEY (env, seq))
    pushprov_clients     (name PRIMARY KEY, key_hash UNIQUE, created, revoked)
    pushprov_idempotency (client, request_id, fingerprint, status, body, created;
                          PRIMARY KEY (client, request_id))
    pushprov_rate        (client, window_start, count; PRIMARY KEY (client, window_start))

The key tables mirror the SQLite store column for column, and secrets go through the same
``SecretBox`` (AES-256-GCM under the scrypt KEK, the record's env and id as associated data).
Migration 2 adds the MAC columns (``_integrity``) and the audit's reference time; the first
open with the passphrase after it MACs the existing rows (``_upgrade``).
A commit locks its environment's ``pushprov_keyring`` row, checks the version and sends
``NOTIFY pushprov_keyring, '<env>:<version>'``, which PostgreSQL delivers only when the
transaction commits: listeners (``KeyringWatcher``) never hear of a version they cannot read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .._errors import UsageError
from ._errors import StoreConflictError, StoreCorruptError, StoreUnavailableError
from ._model import AuditEntry, Change, StoreView
from ._rows import AUDIT_READ, HEAD_READ, KEY_READ, ChangeWriter, audit_entries, store_view
from ._sealing import DEFAULT_KDF_LOG2N, SecretBox, derive_kek, secret_aad, unlock

__all__ = [
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "KeyringWatcher",
    "PostgresStore",
    "check_schema",
    "connect",
    "is_postgres_url",
    "migrate",
    "redacted_url",
]

NOTIFY_CHANNEL = "pushprov_keyring"
_MIGRATIONS: tuple[str, ...] = (
    # 1: the key store and the service state.
    """
    CREATE TABLE pushprov_meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE pushprov_keyring (
        env TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        audit_seq BIGINT NOT NULL,
        audit_head TEXT
    );
    CREATE TABLE pushprov_keys (
        key_id TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        format TEXT NOT NULL,
        owner TEXT NOT NULL,
        roles TEXT NOT NULL,
        label TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT,
        state TEXT NOT NULL,
        transitions TEXT NOT NULL,
        last_used BIGINT,
        public BYTEA NOT NULL,
        sealed_secret BYTEA
    );
    CREATE INDEX pushprov_keys_env ON pushprov_keys (env);
    CREATE TABLE pushprov_audit (
        env TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        key_id TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT,
        reason TEXT NOT NULL,
        version BIGINT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (env, seq)
    );
    CREATE TABLE pushprov_clients (
        name TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        created BIGINT NOT NULL,
        revoked BIGINT
    );
    CREATE TABLE pushprov_idempotency (
        client TEXT NOT NULL,
        request_id TEXT NOT NULL,
        fingerprint BYTEA NOT NULL,
        status INTEGER NOT NULL,
        body BYTEA NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (client, request_id)
    );
    CREATE INDEX pushprov_idempotency_created ON pushprov_idempotency (created);
    CREATE TABLE pushprov_rate (
        client TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (client, window_start)
    );
    """,
    # 2: the MACs of the clear rows (filled in by the first open with the passphrase) and
    # the audit's reference time. IF NOT EXISTS: a database made from a later description
    # of migration 1 may have them already.
    """
    ALTER TABLE pushprov_keyring ADD COLUMN IF NOT EXISTS mac BYTEA;
    ALTER TABLE pushprov_keyring ADD COLUMN IF NOT EXISTS audit_mac BYTEA;
    ALTER TABLE pushprov_keys ADD COLUMN IF NOT EXISTS written BIGINT;
    ALTER TABLE pushprov_keys ADD COLUMN IF NOT EXISTS mac BYTEA;
    ALTER TABLE pushprov_audit ADD COLUMN IF NOT EXISTS ref_at BIGINT;
    ALTER TABLE pushprov_audit ADD COLUMN IF NOT EXISTS mac BYTEA;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
# Any constant will do: it only has to be the same for every `store migrate` run.
_MIGRATE_LOCK = 0x70757368_70726F76


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted_url(url: str) -> str:
    """The URL for messages and reprs: host, port, database and user, never a password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://[unparsable]"
    host, port = params.get("host", "localhost"), params.get("port", "5432")
    user = f"{params['user']}@" if "user" in params else ""
    return f"postgresql://{user}{host}:{port}/{params.get('dbname', '')}"


def connect(url: str, *, application: str) -> psycopg.Connection[Any]:
    """An autocommit connection; a connection failure becomes ``StoreUnavailableError``.

    The password may sit in the URL, ``PGPASSWORD`` or a ``.pgpass`` file (libpq's rules); the
    error names the redacted URL only, since libpq's own text may quote connection parameters.
    """
    try:
        conninfo = make_conninfo(url, application_name=application, connect_timeout="10")
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.ProgrammingError:
        raise UsageError("the store URL is not a valid PostgreSQL URL") from None
    except psycopg.OperationalError:
        raise StoreUnavailableError(f"cannot connect to {redacted_url(url)}") from None


def migrate(url: str) -> tuple[int, int]:
    """Bring the schema to ``SCHEMA_VERSION``; return (version before, version after).

    Each migration is one transaction with its row in ``pushprov_schema``; an advisory lock
    serializes concurrent runs (say, every instance's deploy hook), so each applies once.
    """
    with connect(url, application="pushprov-migrate") as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pushprov_schema (version INTEGER PRIMARY KEY, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM pushprov_schema").fetchone()
        before = int(row[0]) if row else 0
        if before > SCHEMA_VERSION:
            raise StoreCorruptError(
                f"the database schema (version {before}) is newer than this pushprov "
                f"(version {SCHEMA_VERSION})"
            )
        for version in range(before + 1, SCHEMA_VERSION + 1):
            conn.execute(_MIGRATIONS[version - 1].encode())
            conn.execute("INSERT INTO pushprov_schema (version) VALUES (%s)", (version,))
    return before, SCHEMA_VERSION


def check_schema(conn: psycopg.Connection[Any], url: str) -> None:
    """Refuse a database whose schema is missing or at another version than this code's."""
    try:
        row = conn.execute("SELECT coalesce(max(version), 0) FROM pushprov_schema").fetchone()
    except pg_errors.UndefinedTable:
        row = (0,)
    version = int(row[0]) if row else 0
    if version < SCHEMA_VERSION:
        raise UsageError(
            f"the database at {redacted_url(url)} needs `pushprov store migrate` "
            f"(schema {version}, want {SCHEMA_VERSION})"
        )
    if version > SCHEMA_VERSION:
        raise StoreCorruptError(f"the database schema {version} is newer than this pushprov")


class PostgresStore(ChangeWriter):
    """``Store`` on PostgreSQL. One connection, its use serialized, so threads may share it.

    A call that loses the connection raises ``StoreUnavailableError``; the next one reconnects.
    """

    _MARK = "%s"
    _KEYS = "pushprov_keys"
    _KEYRING = "pushprov_keyring"
    _AUDIT = "pushprov_audit"

    def __init__(self, connection: psycopg.Connection[Any], box: SecretBox, url: str) -> None:
        self._db = connection
        self._box = box
        self._lock = threading.Lock()
        self._url = url
        self.url = redacted_url(url)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        passphrase: bytes,
        create: bool = False,
        kdf_log2n: int = DEFAULT_KDF_LOG2N,
    ) -> PostgresStore:
        """Open the store in the (migrated) database at ``url``.

        With ``create``, the first opener sets the KEK parameters; concurrent first openers
        agree on one set, since only one insert wins. ``kdf_log2n`` applies to new stores only.
        """
        conn = connect(url, application="pushprov")
        try:
            check_schema(conn, url)
            # The store's creator already holds the box: scrypt runs once, not twice.
            box = _initialise(conn, passphrase, kdf_log2n) if create else None
            maced = True
            if box is None:
                box, maced = _unlock(conn, passphrase, url)
            store = cls(conn, box, url)
            if not maced:
                store._upgrade()
        except BaseException:
            conn.close()
            raise
        return store

    # -- reads -------------------------------------------------------------------------------

    def read(self, env: str) -> StoreView:
        with self._transaction(read_only=True):
            head = self._db.execute(
                f"SELECT {HEAD_READ} FROM pushprov_keyring WHERE env = %s",  # noqa: S608
                (env,),
            ).fetchone()
            rows = self._db.execute(
                f"SELECT {KEY_READ} FROM pushprov_keys "  # noqa: S608
                "WHERE env = %s ORDER BY created, key_id",
                (env,),
            ).fetchall()
        return store_view(env, head, rows, self._box.rows)

    def load_secret(self, env: str, key_id: str) -> bytes | None:
        with self._transaction(read_only=True):
            found = self._db.execute(
                "SELECT sealed_secret FROM pushprov_keys WHERE env = %s AND key_id = %s",
                (env, key_id),
            ).fetchone()
        if found is None or found[0] is None:
            return None
        return self._box.open(bytes(found[0]), secret_aad(env, key_id))

    def audit_log(self, env: str) -> tuple[AuditEntry, ...]:
        with self._transaction(read_only=True):
            head = self._db.execute(
                f"SELECT {HEAD_READ} FROM pushprov_keyring WHERE env = %s",  # noqa: S608
                (env,),
            ).fetchone()
            rows = self._db.execute(
                f"SELECT {AUDIT_READ} FROM pushprov_audit WHERE env = %s "  # noqa: S608
                "ORDER BY seq",
                (env,),
            ).fetchall()
        return audit_entries(env, head, rows, self._box.rows)

    # -- writes ------------------------------------------------------------------------------

    def commit(self, change: Change) -> int:
        env = change.env
        with self._transaction():
            # Make the env's row exist, then lock it: concurrent writers of one environment
            # queue here, and the second sees the first one's version once it commits.
            self._db.execute(
                "INSERT INTO pushprov_keyring (env, version, audit_seq) VALUES (%s, 0, 0) "
                "ON CONFLICT (env) DO NOTHING",
                (env,),
            )
            head = self._db.execute(
                "SELECT version FROM pushprov_keyring WHERE env = %s FOR UPDATE", (env,)
            ).fetchone()
            current = 0 if head is None else int(head[0])
            self._check_base(change, current)
            self._check_head(env)
            self._write_change(change, current + 1)
            last = change.audit[-1] if change.audit else None
            self._db.execute(
                "UPDATE pushprov_keyring SET version = %s, "
                "audit_seq = coalesce(%s, audit_seq), audit_head = coalesce(%s, audit_head) "
                "WHERE env = %s",
                (current + 1, None if last is None else last.seq,
                 None if last is None else last.hash, env),
            )  # fmt: skip
            self._seal_head(env)
            self._db.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{env}:{current + 1}"))
        return current + 1

    def record_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        if not key_ids:
            return
        with self._transaction():
            self._note_use(env, key_ids, at)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"PostgresStore(url={self.url!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _upgrade(self) -> None:
        """A store from before migration 2's MACs: MAC every row as it stands and mark the
        store MACed, in one transaction; concurrent openers queue on the check's row lock,
        and the later ones find the work done."""
        with self._transaction():
            row = self._db.execute(
                "SELECT value FROM pushprov_meta WHERE name = 'kek_check' FOR UPDATE"
            ).fetchone()
            if self._box.verify_check(bytes(row[0])):
                return
            self._mac_existing_rows()
            self._db.execute(
                "UPDATE pushprov_meta SET value = %s WHERE name = 'kek_check'",
                (self._box.make_check(),),
            )

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[None]:
        with self._lock:
            try:
                if self._db.broken:
                    # The last call failed with the connection (restart, failover): a new one.
                    self._db = connect(self._url, application="pushprov")
                with self._db.transaction():
                    if read_only:
                        # One snapshot for every statement of the read: never half a rotation.
                        self._db.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
                        )
                    yield
            except pg_errors.IntegrityError:
                raise StoreConflictError("the change clashes with a stored record") from None
            except psycopg.OperationalError:
                raise StoreUnavailableError(f"lost the connection to {self.url}") from None


def _initialise(conn: psycopg.Connection[Any], passphrase: bytes, log2n: int) -> SecretBox | None:
    """Set the KEK parameters if nobody has; the box if ours won, else None (then unlock)."""
    if conn.execute("SELECT 1 FROM pushprov_meta WHERE name = 'kek_check'").fetchone():
        return None
    salt = os.urandom(16)
    box = SecretBox(derive_kek(passphrase, salt, log2n))
    with conn.transaction():
        # One row decides: a concurrent initialiser's insert wins or ours does, never a mix.
        inserted = conn.execute(
            "INSERT INTO pushprov_meta (name, value) VALUES ('kek_check', %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            (box.make_check(),),
        ).fetchone()
        if inserted:
            conn.execute(
                "INSERT INTO pushprov_meta (name, value) VALUES ('kdf_log2n', %s), "
                "('kdf_salt', %s)",
                (str(log2n).encode(), salt),
            )
    return box if inserted else None


def _unlock(conn: psycopg.Connection[Any], passphrase: bytes, url: str) -> tuple[SecretBox, bool]:
    meta = {
        str(name): bytes(value)
        for name, value in conn.execute(
            "SELECT name, value FROM pushprov_meta WHERE name IN "
            "('kdf_log2n', 'kdf_salt', 'kek_check')"
        ).fetchall()
    }
    if not meta:
        raise UsageError(f"no key store at {redacted_url(url)} yet (generate or import a key)")
    return unlock(meta, passphrase)


class KeyringWatcher:
    """LISTENs for committed keyring versions and calls ``on_change(env)`` from a daemon thread.

    After every (re)connection it calls ``on_change(None)`` (a notification may have been
    missed while disconnected), then retries every ``retry`` seconds while the database is
    away; the reader's polling covers that gap.
    """

    def __init__(
        self, url: str, on_change: Callable[[str | None], None], *, retry: float = 1.0
    ) -> None:
        self._url = url
        self._on_change = on_change
        self._retry = retry
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="pushprov-keyring-watch", daemon=True
        )

    def start(self) -> KeyringWatcher:
        self._thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __repr__(self) -> str:
        return f"KeyringWatcher(url={redacted_url(self._url)!r})"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url, application="pushprov-watch") as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening.set()
                    self._on_change(None)
                    while not self._stop.is_set():
                        # The timeout only bounds how long stop() waits for this thread.
                        for note in conn.notifies(timeout=0.5):
                            self._on_change(note.payload.rpartition(":")[0])
            except (StoreUnavailableError, psycopg.Error):
                self._listening.clear()
                self._stop.wait(self._retry)
