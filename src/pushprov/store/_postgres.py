"""The shared store: PostgreSQL (psycopg 3) for several service instances, secrets sealed at rest.

Schema: ``_schema``'s key and service tables with ``pushprov_`` names, plus ``pushprov_schema``
(one row per applied migration; ``pushprov store migrate`` applies them, ``PostgresStore.open``
checks them). ``pushprov_meta`` holds kdf_log2n, kdf_salt, kek_check and service_hmac_key.
Secrets go through the same ``SecretBox`` as SQLite's (AES-256-GCM under the scrypt KEK, the
record's env and id as associated data). A commit locks its environment's ``pushprov_keyring``
row, checks the version and sends ``NOTIFY pushprov_keyring, '<env>:<version>'``, which
PostgreSQL delivers only when the transaction commits: listeners (``KeyringWatcher``) never hear
of a version they cannot read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .._errors import UsageError
from ._errors import StoreConflictError, StoreCorruptError, StoreUnavailableError
from ._rows import SqlStore
from ._schema import KEY_TABLES, POSTGRES, SERVICE_TABLES, added_columns, create_statements
from ._sealing import DEFAULT_KDF_LOG2N, SecretBox, derive_kek, unlock

__all__ = [
    "MISSING_SCHEMA",
    "SCHEMA_VERSION",
    "KeyringWatcher",
    "PostgresStore",
    "check_schema",
    "connect",
    "migrate",
    "redacted_url",
]

NOTIFY_CHANNEL = "pushprov_keyring"
_MIGRATIONS: tuple[str, ...] = (
    # 1: the key store and the service state.
    ";\n".join(create_statements(POSTGRES, KEY_TABLES + SERVICE_TABLES, version=1)),
    # 2: the row MACs and the audit's reference time; the first open with the passphrase
    # then MACs the rows already there (``PostgresStore._upgrade``).
    ";\n".join(added_columns(POSTGRES, KEY_TABLES, 2)),
    # 3: where an HSM key's private halves live (``custody``; NULL for the rows already there).
    ";\n".join(added_columns(POSTGRES, KEY_TABLES, 3)),
    # 4: partner states and evidence on key rows; which keys sealed each answer, its outcome.
    ";\n".join(added_columns(POSTGRES, KEY_TABLES + SERVICE_TABLES, 4, if_not_exists=True)),
)
SCHEMA_VERSION = len(_MIGRATIONS)
# A table or column of the schema gone (dropped by hand): the store is not as we made it.
MISSING_SCHEMA = (pg_errors.UndefinedTable, pg_errors.UndefinedColumn)
# Any constant will do: it only has to be the same for every `store migrate` run.
_MIGRATE_LOCK = 0x70757368_70726F76


def redacted_url(url: str) -> str:
    """The URL for messages and reprs: host, port, database and user, never a password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://[unparsable]"
    host, port = params.get("host", "localhost"), params.get("port", "5432")
    user = f"{params['user']}@" if "user" in params else ""
    return f"postgresql://{user}{host}:{port}/{params.get('dbname', '')}"


# Settings added to the operator's URL unless it sets them (the URL wins), so that a database
# that stops answering without closing the connection (a partition, a frozen host or server)
# costs a caller seconds, not TCP's minutes. Small, because a `serve` worker runs its store
# calls one after another on its event loop: each stalled call delays every queued request.
_LIBPQ_DEFAULTS = {
    # A new connection gives up after 2 s (libpq: seconds; 2 is its minimum): connecting and
    # SCRAM take milliseconds on a live server.
    "connect_timeout": "2",
    # An idle connection (the watcher's LISTEN, a store between requests) on a path that drops
    # packets is found dead after 1 s idle + 2 unanswered probes 1 s apart = 3 s (seconds).
    "keepalives": "1",
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    # Data sent and not acknowledged for 3 s drops the connection (libpq: milliseconds).
    "tcp_user_timeout": "3000",
}
# Server side: a statement of the service or key store that runs past 2.5 s (waiting on a
# lock a stuck session holds) is cancelled by the server, a clean 503; the service's
# statements take milliseconds. Not for migrate: a migration on a large table may take
# longer, and it holds its advisory lock, not a caller.
_STATEMENT_TIMEOUT_MS = 2500
# Client side, for what TCP cannot see: a peer whose kernel still acknowledges (a frozen
# server process, a stuck proxy) never trips keepalives or tcp_user_timeout. No reply within
# 3 s (above the server's statement_timeout, so a slow statement gets the server's clean
# cancel first) breaks the connection; the next use reconnects.
_REPLY_TIMEOUT_SECONDS = 3.0


class _BoundedConnection(psycopg.Connection[Any]):
    """A connection whose every round trip (statement, commit, rollback) waits at most
    ``reply_timeout`` for the server; then it is broken, as if the server had closed it.
    ``wait``'s ``timeout`` (and its ``_WaitTimeout``) are psycopg's since 3.3.6."""

    reply_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None or self.reply_timeout is None:  # notifies(timeout=...): its own
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.reply_timeout)
        except psycopg.errors._WaitTimeout:
            # Mid-protocol: the connection cannot be used again. Finishing the libpq
            # connection marks it ``broken``, which the stores test to reconnect.
            self.pgconn.finish()
            raise psycopg.OperationalError("the server did not answer in time") from None


def connect(url: str, *, application: str) -> psycopg.Connection[Any]:
    """An autocommit connection; a connection failure becomes ``StoreUnavailableError``.

    The password may sit in the URL, ``PGPASSWORD`` or a ``.pgpass`` file (libpq's rules); the
    error names the redacted URL only, since libpq's own text may quote connection parameters.
    Timeouts (``_LIBPQ_DEFAULTS``, ``statement_timeout`` through ``options``) are added unless
    the URL sets them; an operator's ``statement_timeout`` also lifts the client-side bound.
    """
    try:
        given = conninfo_to_dict(url)
        added = {k: v for k, v in _LIBPQ_DEFAULTS.items() if k not in given}
        options = str(given.get("options") or "")
        bounded = application != "pushprov-migrate" and "statement_timeout" not in options
        if bounded:
            added["options"] = f"{options} -c statement_timeout={_STATEMENT_TIMEOUT_MS}".strip()
        conninfo = make_conninfo(url, application_name=application, **added)
        conn = _BoundedConnection.connect(conninfo, autocommit=True)
    except psycopg.ProgrammingError:
        raise UsageError("the store URL is not a valid PostgreSQL URL") from None
    except psycopg.OperationalError:
        raise StoreUnavailableError(f"cannot connect to {redacted_url(url)}") from None
    # Set after connecting: connect's own waits are bounded by connect_timeout.
    conn.reply_timeout = _REPLY_TIMEOUT_SECONDS if bounded else None
    return conn


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


class PostgresStore(SqlStore):
    """``Store`` on PostgreSQL. One connection, its use serialized, so threads may share it.

    A call that loses the connection raises ``StoreUnavailableError``; the next one reconnects.
    """

    _dialect = POSTGRES

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
        except psycopg.OperationalError:
            conn.close()
            raise StoreUnavailableError(f"lost the connection to {redacted_url(url)}") from None
        except MISSING_SCHEMA:
            conn.close()
            raise StoreCorruptError("the key tables do not match the schema") from None
        except BaseException:
            conn.close()
            raise
        return store

    # -- writes ------------------------------------------------------------------------------

    def _announce(self, env: str, version: int) -> None:
        self._db.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{env}:{version}"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"PostgresStore(url={self.url!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _upgrade(self) -> None:
        """A store from before migration 2's MACs: MAC every row as it stands and mark the
        store MACed (its KEK check), in one transaction; concurrent openers queue on the
        check's row lock, and the later ones find the work done."""
        with self._transaction(write=True):
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
    def _transaction(self, *, write: bool) -> Iterator[None]:
        with self._lock:
            try:
                if self._db.broken:
                    # The last call failed with the connection (restart, failover): a new one.
                    self._db = connect(self._url, application="pushprov")
                with self._db.transaction():
                    if not write:
                        # One snapshot for every statement of the read: never half a rotation.
                        self._db.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
                        )
                    yield
            except pg_errors.IntegrityError:
                raise StoreConflictError("the change clashes with a stored record") from None
            except psycopg.OperationalError:
                raise StoreUnavailableError(f"lost the connection to {self.url}") from None
            except MISSING_SCHEMA:
                raise StoreCorruptError("the key tables do not match the schema") from None


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
