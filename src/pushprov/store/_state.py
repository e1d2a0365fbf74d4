"""What the service keeps besides keys: API clients, idempotency records, rate-limit windows.

``ServiceState`` is the narrow interface; ``SqliteServiceState`` the embedded implementation
(one file, WAL, shared by the worker processes), ``PostgresServiceState`` the shared one (the
key store's database, for several instances: a replay through any instance finds the stored
answer, and the rate limit counts a client's requests across all of them). Both use
``_schema``'s service tables. API keys are stored as SHA-256 hashes only (they are 256-bit
random, so no slow hash is needed). Idempotency records hold an HMAC of the request body and
the response, which carries only the sealed card, never the clear one, and which keys sealed it
(fingerprints and roles, as the service encodes them) with the outcome its client reported
(``record_outcome``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .._clock import as_unix, from_unix
from .._errors import StoreError, UsageError
from ._errors import StoreUnavailableError
from ._paths import private_database_file
from ._schema import (
    LATEST,
    SERVICE_TABLES,
    SQLITE_SERVICE,
    Dialect,
    added_columns,
    columns_added,
    create_statements,
)
from ._sqlite import run_in_transaction, store_error

__all__ = [
    "ClientInfo",
    "OutcomeRecord",
    "OutcomeResult",
    "ServiceState",
    "SqliteServiceState",
    "StoredResponse",
]

_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_PREFIX = "pp_"


@dataclasses.dataclass(frozen=True)
class ClientInfo:
    name: str
    created: _dt.datetime
    revoked: _dt.datetime | None


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    fingerprint: bytes  # HMAC of the request body
    status: int
    body: bytes
    keys: str | None = None  # which keys sealed it: fingerprints and roles, never card data


class OutcomeResult(enum.StrEnum):
    """What became of one reported outcome."""

    RECORDED = "recorded"  # first report for a live answer of this client: it counts
    DUPLICATE = "duplicate"  # the same outcome again: counted once
    CONFLICTING = "conflicting"  # another outcome than the first: the first stands
    LATE = "late"  # the answer is older than the outcome window: not trusted
    UNKNOWN = "unknown"  # no answer with this requestId (never made, or purged)
    REFUSED = "refused"  # another client's requestId: never trusted, never told apart


@dataclasses.dataclass(frozen=True)
class OutcomeRecord:
    result: OutcomeResult
    keys: str | None = None  # the sealing keys, for a recorded outcome only


class ServiceState(Protocol):
    def add_client(self, name: str, *, at: _dt.datetime) -> str: ...
    def list_clients(self) -> list[ClientInfo]: ...
    def revoke_client(self, name: str, *, at: _dt.datetime) -> None: ...
    def authenticate(self, api_key: str) -> str | None: ...
    def count_request(self, client: str, window: int, requests: int = 1) -> int: ...
    def body_fingerprint(self, body: bytes) -> bytes: ...
    def recall(
        self, client: str, request_id: str, *, since: _dt.datetime
    ) -> StoredResponse | None: ...
    def remember(
        self,
        client: str,
        request_id: str,
        response: StoredResponse,
        *,
        at: _dt.datetime,
        since: _dt.datetime,
    ) -> StoredResponse: ...
    def purge_expired(self, before: _dt.datetime) -> int: ...
    def record_outcome(
        self, client: str, request_id: str, outcome: str, *, since: _dt.datetime
    ) -> OutcomeRecord: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


# Each statement once, for both dialects: {p} is the placeholder, the rest are table names and
# the rate table's window column, as the dialect spells them. Fixed names only.
_STATEMENTS = {
    "add_client": "INSERT INTO {clients} (name, key_hash, created) VALUES ({p}, {p}, {p})",
    "list_clients": "SELECT name, created, revoked FROM {clients} ORDER BY name",
    "revoke_client": "UPDATE {clients} SET revoked = {p} WHERE name = {p} AND revoked IS NULL",
    "lookup_client": "SELECT name FROM {clients} WHERE key_hash = {p} AND revoked IS NULL",
    "count": "INSERT INTO {rate} (client, {window}, count) VALUES ({p}, {p}, {p}) "
    "ON CONFLICT (client, {window}) DO UPDATE "
    "SET count = {rate}.count + excluded.count RETURNING count",
    "forget_windows": "DELETE FROM {rate} WHERE {window} < {p}",
    "recall": "SELECT fingerprint, status, body, keys FROM {idempotency} "
    "WHERE client = {p} AND request_id = {p} AND created >= {p}",
    # Every client's record of a requestId (the request_id index): whose it is decides.
    "outcomes_of": "SELECT client, created, keys, outcome FROM {idempotency} "
    "WHERE request_id = {p}",
    # The first outcome wins; a concurrent second report changes nothing.
    "set_outcome": "UPDATE {idempotency} SET outcome = {p} "
    "WHERE client = {p} AND request_id = {p} AND outcome IS NULL",
    # The insert, or the replacement of a record older than the window, or nothing (a live
    # record is kept, and RETURNING gives no row).
    "remember": "INSERT INTO {idempotency} (client, request_id, fingerprint, status, body, "
    "created, keys) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (client, request_id) DO UPDATE "
    "SET fingerprint = excluded.fingerprint, status = excluded.status, body = excluded.body, "
    "created = excluded.created, keys = excluded.keys, outcome = NULL "
    "WHERE {idempotency}.created < {p} RETURNING 1",
    # One bounded batch (by primary key, which both dialects compare as a row value), so that a
    # backlog (~2,000 records a second at capacity) never holds the caller's loop for long.
    "purge": "DELETE FROM {idempotency} WHERE (client, request_id) IN (SELECT client, "
    "request_id FROM {idempotency} WHERE created < {p} LIMIT {p})",
}


@dataclasses.dataclass(frozen=True)
class _Sql:
    """One dialect's statements."""

    add_client: str
    list_clients: str
    revoke_client: str
    lookup_client: str
    count: str
    forget_windows: str
    recall: str
    outcomes_of: str
    set_outcome: str
    remember: str
    purge: str

    @classmethod
    def of(cls, dialect: Dialect) -> _Sql:
        names = {table: dialect.table(table) for table in SERVICE_TABLES}
        return cls(**{
            name: template.format(**names, p=dialect.mark, window=dialect.column("window"))
            for name, template in _STATEMENTS.items()
        })  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class _Result:
    """A statement's rows, all read, and how many rows it changed."""

    rows: list[Any]
    rowcount: int

    def one(self) -> Any:
        return self.rows[0] if self.rows else None


class _SqlServiceState:
    """The service state over SQL, once for both stores; a dialect gives ``_sql``, ``_run``
    (serialized by a lock: tests and the CLI share an object with the event loop's thread; a
    store that cannot be used raises ``StoreUnavailableError`` or ``StoreCorruptError``, never
    the driver's own error) and the error a duplicate raises."""

    _sql: ClassVar[_Sql]
    _duplicate: ClassVar[type[Exception]]
    _hmac_key: bytes
    _next_purge = 0.0
    #: How long a worker trusts a successful key lookup. A revocation made through this
    #: object applies at once; one made elsewhere (the CLI, another instance) within this.
    client_cache_seconds = 1.0
    #: Expired idempotency records removed per purge, and the seconds between purges of one
    #: process: 1,000 a second per worker outpaces the ~2,000 records a second (~170 M a day)
    #: a whole deployment writes at capacity, and one batch takes a few milliseconds.
    purge_batch = 1000
    purge_interval_seconds = 1.0
    #: How long ``ping`` fails after any statement found the store unusable. Readiness must
    #: say what callers meet: on a full disk the probe's small write can still find room
    #: (SQLite reuses WAL space) while the requests' inserts fail. Also a ping within it
    #: does not queue for the lock behind statements still waiting on a frozen server.
    unready_after_failure_seconds = 2.0

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._monotonic = monotonic
        self._clients_seen: dict[str, tuple[str, float]] = {}  # key hash -> (client, until)
        self._failed_at = -math.inf

    def _run(self, query: str, params: tuple[Any, ...]) -> _Result:
        raise NotImplementedError

    def _execute(self, query: str, params: tuple[Any, ...] = ()) -> _Result:
        try:
            return self._run(query, params)
        except StoreUnavailableError:
            self._failed_at = self._monotonic()
            raise

    # -- clients ---------------------------------------------------------------------------

    def add_client(self, name: str, *, at: _dt.datetime) -> str:
        if not _CLIENT_NAME.fullmatch(name):
            raise UsageError("client name: 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric")
        api_key = _KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            self._execute(self._sql.add_client, (name, _hash_key(api_key), as_unix(at)))
        except self._duplicate:
            raise UsageError(f"client {name} exists (revoke it and add a new name)") from None
        return api_key

    def list_clients(self) -> list[ClientInfo]:
        return [
            ClientInfo(name, from_unix(created), None if revoked is None else from_unix(revoked))
            for name, created, revoked in self._execute(self._sql.list_clients).rows
        ]

    def revoke_client(self, name: str, *, at: _dt.datetime) -> None:
        result = self._execute(self._sql.revoke_client, (as_unix(at), name))
        self._clients_seen.clear()
        if result.rowcount != 1:
            raise UsageError(f"no active client named {name}")

    def authenticate(self, api_key: str) -> str | None:
        """The active client holding ``api_key``, or None."""
        if not api_key.startswith(_KEY_PREFIX) or len(api_key) > 100:
            return None
        key_hash = _hash_key(api_key)
        now = self._monotonic()
        seen = self._clients_seen.get(key_hash)
        if seen is not None and now < seen[1]:
            return seen[0]
        row = self._execute(self._sql.lookup_client, (key_hash,)).one()
        if row is None:
            self._clients_seen.pop(key_hash, None)
            return None
        if len(self._clients_seen) >= 1024:  # bounded: clients are few, wrong keys not kept
            self._clients_seen.clear()
        client = str(row[0])
        self._clients_seen[key_hash] = (client, now + self.client_cache_seconds)
        return client

    # -- rate limit ------------------------------------------------------------------------

    def count_request(self, client: str, window: int, requests: int = 1) -> int:
        """Add ``requests`` to the client's count in ``window``; the new count."""
        total = self._execute(self._sql.count, (client, window, requests)).rows[0][0]
        if window % 60 == 0:  # now and then, forget old windows
            self._execute(self._sql.forget_windows, (window - 60,))
        return int(total)

    # -- idempotency -----------------------------------------------------------------------

    def body_fingerprint(self, body: bytes) -> bytes:
        return hmac.new(self._hmac_key, body, hashlib.sha256).digest()

    def recall(self, client: str, request_id: str, *, since: _dt.datetime) -> StoredResponse | None:
        row = self._execute(self._sql.recall, (client, request_id, as_unix(since))).one()
        if row is None:
            return None
        keys = None if row[3] is None else str(row[3])
        return StoredResponse(bytes(row[0]), int(row[1]), bytes(row[2]), keys)

    def remember(
        self,
        client: str,
        request_id: str,
        response: StoredResponse,
        *,
        at: _dt.datetime,
        since: _dt.datetime,
    ) -> StoredResponse:
        """Store the answer unless another worker or instance stored one since ``since``;
        return the winner. One statement, so a 200 sent after it survives the sender."""
        stored = self._execute(
            self._sql.remember,
            (client, request_id, response.fingerprint, response.status, response.body,
             as_unix(at), response.keys, as_unix(since)),
        ).rows  # fmt: skip
        now = self._monotonic()
        if now >= self._next_purge:  # at most once per interval per process, one batch
            self._next_purge = now + self.purge_interval_seconds
            self.purge_expired(since)
        if stored:
            return response
        winner = self.recall(client, request_id, since=since)
        assert winner is not None  # the conflicting record is live, or we would have replaced it
        return winner

    def purge_expired(self, before: _dt.datetime) -> int:
        """Delete at most ``purge_batch`` idempotency records created before ``before`` (the
        start of the window); how many went. The ``created`` index bounds the search."""
        return self._execute(self._sql.purge, (as_unix(before), self.purge_batch)).rowcount

    def record_outcome(
        self, client: str, request_id: str, outcome: str, *, since: _dt.datetime
    ) -> OutcomeRecord:
        """Keep the first ``outcome`` reported for ``client``'s answer to ``request_id`` if
        that answer was made since ``since`` (the outcome window); what became of it.

        A requestId only another client used is ``REFUSED`` (and nothing of that record is
        returned), one nobody used (or whose record was purged) ``UNKNOWN``.
        """
        rows = self._execute(self._sql.outcomes_of, (request_id,)).rows
        own = next((row for row in rows if row[0] == client), None)
        if own is None:
            return OutcomeRecord(OutcomeResult.REFUSED if rows else OutcomeResult.UNKNOWN)
        _, created, keys, first = own
        if int(created) < as_unix(since):
            return OutcomeRecord(OutcomeResult.LATE)
        if first is None:
            updated = self._execute(self._sql.set_outcome, (outcome, client, request_id))
            if updated.rowcount == 1:
                return OutcomeRecord(OutcomeResult.RECORDED, None if keys is None else str(keys))
            # Another report won meanwhile: judge this one against it.
            rows = self._execute(self._sql.outcomes_of, (request_id,)).rows
            first = next((row[3] for row in rows if row[0] == client), None)
        same = first == outcome
        return OutcomeRecord(OutcomeResult.DUPLICATE if same else OutcomeResult.CONFLICTING)

    def ping(self) -> bool:
        """Whether the store serves now: false within ``unready_after_failure_seconds`` of a
        failed statement (without waiting for the lock), else the dialect's probe's outcome."""
        if self._monotonic() - self._failed_at < self.unready_after_failure_seconds:
            return False
        try:
            self._execute(*self._probe())
        except StoreError:
            return False
        return True

    def _probe(self) -> tuple[str, tuple[Any, ...]]:
        """What ``ping`` runs: a statement that fails when the store cannot serve requests."""
        return "SELECT 1", ()


class SqliteServiceState(_SqlServiceState):
    """The embedded state store: one file, WAL, one connection per process."""

    _sql = _Sql.of(SQLITE_SERVICE)
    _duplicate = sqlite3.IntegrityError

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        private_database_file(path, create=True)  # the key store's check: ours alone
        super().__init__(monotonic=monotonic)
        try:
            self._db = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise store_error(error) from None
        try:
            self._open()
        except sqlite3.Error as error:
            self._db.close()
            raise store_error(error) from None

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Every worker runs this at start: all or nothing, and a no-op once done.
        schema = create_statements(SQLITE_SERVICE, ("meta", *SERVICE_TABLES), if_not_exists=True)
        run_in_transaction(self._db, [
            *((statement, ()) for statement in schema),
            ("INSERT OR IGNORE INTO service_meta (name, value) VALUES ('hmac_key', ?)",
             (secrets.token_bytes(32),)),
        ])  # fmt: skip
        _add_missing_columns(self._db)
        row = self._db.execute("SELECT value FROM service_meta WHERE name = 'hmac_key'").fetchone()
        self._hmac_key = bytes(row[0])
        # Waiting for another process's write lock is ours to do (see _execute): SQLite's own
        # handler first sleeps a whole millisecond, twenty times what a write holds the lock.
        self._db.execute("PRAGMA busy_timeout=0")

    def __repr__(self) -> str:
        return "SqliteServiceState([secret])"

    def _probe(self) -> tuple[str, tuple[Any, ...]]:
        # A committed write: the file can be read while the disk is full, and readiness must
        # fail as the requests' writes do. A new value each time, so a page really changes.
        return (
            "INSERT OR REPLACE INTO service_meta (name, value) VALUES ('ready_probe', ?)",
            (secrets.token_bytes(8),),
        )

    def _run(self, query: str, params: tuple[Any, ...]) -> _Result:
        with self._lock:
            delay, deadline = _BUSY_FIRST_WAIT, 0.0
            while True:
                try:
                    # Fetched here: a write with RETURNING meets a full disk or a lock only
                    # when its rows are read, and must fail here to be translated.
                    cursor = self._db.execute(query, params)
                    return _Result(cursor.fetchall(), cursor.rowcount)
                except self._duplicate:
                    raise
                except sqlite3.Error as error:
                    # A statement that met a locked database changed nothing: run it again.
                    if (error.sqlite_errorcode or 0) & 0xFF != sqlite3.SQLITE_BUSY:
                        raise store_error(error) from None
                    now = time.monotonic()
                    if not deadline:
                        deadline = now + _BUSY_TIMEOUT_SECONDS
                    elif now > deadline:
                        raise store_error(error) from None
                time.sleep(delay)
                delay = min(2 * delay, _BUSY_LAST_WAIT)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A service file from an older pushprov gains each later version's columns, once: the
    check and the change in one write transaction, as every worker runs this at start."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for version in range(2, LATEST + 1):
            present = {
                str(row[1])
                for table in SERVICE_TABLES
                for row in db.execute(f"PRAGMA table_info({SQLITE_SERVICE.table(table)})")
            }
            wanted = {c for table in SERVICE_TABLES for c in columns_added(table, version)}
            if not wanted <= present:
                for statement in added_columns(SQLITE_SERVICE, SERVICE_TABLES, version):
                    db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


_BUSY_FIRST_WAIT = 50e-6
_BUSY_LAST_WAIT = 5e-3
_BUSY_TIMEOUT_SECONDS = 10.0


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
