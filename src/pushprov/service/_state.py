"""What the service keeps besides keys: API clients, idempotency records, rate-limit windows.

``ServiceState`` is the narrow interface; ``SqliteServiceState`` the embedded implementation
(one file, WAL, shared by the worker processes), ``PostgresServiceState`` the shared one (one
database for several instances: a replay through any instance finds the stored answer, and the
rate limit counts a client's requests across all of them). API keys are stored as SHA-256
hashes only (they are 256-bit random, so no slow hash is needed). Idempotency records hold an
HMAC of the request body and the response, which carries only the sealed card, never the clear
one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

import psycopg
from psycopg import errors as pg_errors

from .._clock import as_unix, from_unix
from .._errors import UsageError
from ..store import StoreUnavailableError
from ..store._postgres import check_schema, connect, redacted_url

__all__ = [
    "ClientInfo",
    "PostgresServiceState",
    "ServiceState",
    "SqliteServiceState",
    "StoredResponse",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(method: Callable[_P, _R]) -> Callable[_P, _R]:
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


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


class ServiceState(Protocol):
    @_locked
    def add_client(self, name: str, *, at: _dt.datetime) -> str: ...
    @_locked
    def list_clients(self) -> list[ClientInfo]: ...
    @_locked
    def revoke_client(self, name: str, *, at: _dt.datetime) -> None: ...
    @_locked
    def authenticate(self, api_key: str) -> str | None: ...
    @_locked
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
    @_locked
    def ping(self) -> bool: ...
    @_locked
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS service_clients (
    name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
    revoked INTEGER);
CREATE TABLE IF NOT EXISTS service_idempotency (
    client TEXT NOT NULL, request_id TEXT NOT NULL, fingerprint BLOB NOT NULL,
    status INTEGER NOT NULL, body BLOB NOT NULL, created INTEGER NOT NULL,
    PRIMARY KEY (client, request_id));
CREATE INDEX IF NOT EXISTS service_idempotency_created ON service_idempotency(created);
CREATE TABLE IF NOT EXISTS service_rate (
    client TEXT NOT NULL, window INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (client, window));
"""


class _StateBase:
    """What both state stores do the same way, whatever their SQL dialect."""

    _hmac_key: bytes
    _next_purge = 0.0
    #: How long a worker trusts a successful key lookup. A revocation made through this
    #: object applies at once; one made elsewhere (the CLI, another instance) within this.
    client_cache_seconds = 1.0

    def __init__(self) -> None:
        self._clients_seen: dict[str, tuple[str, float]] = {}  # key hash -> (client, until)

    def _lookup_client(self, key_hash: str) -> str | None:
        raise NotImplementedError

    def authenticate(self, api_key: str) -> str | None:
        """The active client holding ``api_key``, or None."""
        key_hash = self._key_hash(api_key)
        if key_hash is None:
            return None
        now = time.monotonic()
        seen = self._clients_seen.get(key_hash)
        if seen is not None and now < seen[1]:
            return seen[0]
        client = self._lookup_client(key_hash)
        if client is None:
            self._clients_seen.pop(key_hash, None)
            return None
        if len(self._clients_seen) >= 1024:  # bounded: clients are few, wrong keys not kept
            self._clients_seen.clear()
        self._clients_seen[key_hash] = (client, now + self.client_cache_seconds)
        return client

    @staticmethod
    def _new_client(name: str) -> tuple[str, str]:
        """A checked client name's fresh API key and the hash that is all we store of it."""
        if not _CLIENT_NAME.fullmatch(name):
            raise UsageError("client name: 1-64 of A-Z a-z 0-9 . _ -, starting alphanumeric")
        api_key = _KEY_PREFIX + secrets.token_urlsafe(32)
        return api_key, _hash_key(api_key)

    @staticmethod
    def _key_hash(api_key: str) -> str | None:
        """The lookup hash of a presented key, or None for anything that cannot be one."""
        if not api_key.startswith(_KEY_PREFIX) or len(api_key) > 100:
            return None
        return _hash_key(api_key)

    @staticmethod
    def _client_infos(rows: Iterable[tuple[Any, ...]]) -> list[ClientInfo]:
        return [
            ClientInfo(name, from_unix(created), None if revoked is None else from_unix(revoked))
            for name, created, revoked in rows
        ]

    def body_fingerprint(self, body: bytes) -> bytes:
        return hmac.new(self._hmac_key, body, hashlib.sha256).digest()

    def _purge_due(self) -> bool:
        """At most once a minute per process: drop idempotency records past their window."""
        now = time.monotonic()
        if now < self._next_purge:
            return False
        self._next_purge = now + 60.0
        return True


class SqliteServiceState(_StateBase):
    """The embedded state store: one connection per process, its use serialized by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise UsageError(f"{path} is readable by group or others; chmod 600 it")
        super().__init__()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO service_meta (name, value) VALUES ('hmac_key', ?)",
            (secrets.token_bytes(32),),
        )
        row = self._db.execute("SELECT value FROM service_meta WHERE name = 'hmac_key'").fetchone()
        self._hmac_key: bytes = row[0]

    def __repr__(self) -> str:
        return "SqliteServiceState([secret])"

    # -- clients ---------------------------------------------------------------------------

    def add_client(self, name: str, *, at: _dt.datetime) -> str:
        api_key, key_hash = self._new_client(name)
        try:
            self._db.execute(
                "INSERT INTO service_clients (name, key_hash, created) VALUES (?, ?, ?)",
                (name, key_hash, as_unix(at)),
            )
        except sqlite3.IntegrityError:
            raise UsageError(f"client {name} exists (revoke it and add a new name)") from None
        return api_key

    def list_clients(self) -> list[ClientInfo]:
        return self._client_infos(
            self._db.execute(
                "SELECT name, created, revoked FROM service_clients ORDER BY name"
            ).fetchall()
        )

    def revoke_client(self, name: str, *, at: _dt.datetime) -> None:
        cursor = self._db.execute(
            "UPDATE service_clients SET revoked = ? WHERE name = ? AND revoked IS NULL",
            (as_unix(at), name),
        )
        self._clients_seen.clear()
        if cursor.rowcount != 1:
            raise UsageError(f"no active client named {name}")

    def _lookup_client(self, key_hash: str) -> str | None:
        row = self._db.execute(
            "SELECT name FROM service_clients WHERE key_hash = ? AND revoked IS NULL",
            (key_hash,),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- rate limit ------------------------------------------------------------------------

    def count_request(self, client: str, window: int, requests: int = 1) -> int:
        row = self._db.execute(
            "INSERT INTO service_rate (client, window, count) VALUES (?, ?, ?) "
            "ON CONFLICT (client, window) DO UPDATE SET count = count + excluded.count "
            "RETURNING count",
            (client, window, requests),
        ).fetchall()[0]
        if window % 60 == 0:  # now and then, forget old windows
            self._db.execute("DELETE FROM service_rate WHERE window < ?", (window - 60,))
        return int(row[0])

    # -- idempotency -----------------------------------------------------------------------

    @_locked
    def recall(self, client: str, request_id: str, *, since: _dt.datetime) -> StoredResponse | None:
        row = self._db.execute(
            "SELECT fingerprint, status, body FROM service_idempotency "
            "WHERE client = ? AND request_id = ? AND created >= ?",
            (client, request_id, as_unix(since)),
        ).fetchone()
        return None if row is None else StoredResponse(bytes(row[0]), int(row[1]), bytes(row[2]))

    def remember(
        self,
        client: str,
        request_id: str,
        response: StoredResponse,
        *,
        at: _dt.datetime,
        since: _dt.datetime,
    ) -> StoredResponse:
        """Store the answer unless another worker stored one since ``since``; return the winner.

        One statement, as in PostgreSQL: the insert, or the replacement of a record older than
        the window, or nothing (then the live record is read back).
        """
        row = self._db.execute(
            "INSERT INTO service_idempotency (client, request_id, fingerprint, status, body, "
            "created) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client, request_id) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, status = excluded.status, "
            "body = excluded.body, created = excluded.created "
            "WHERE service_idempotency.created < ? RETURNING 1",
            (client, request_id, response.fingerprint, response.status, response.body,
             as_unix(at), as_unix(since)),
        ).fetchall()  # fmt: skip
        if self._purge_due():
            self._db.execute("DELETE FROM service_idempotency WHERE created < ?", (as_unix(since),))
        if row:
            return response
        winner = self.recall(client, request_id, since=since)
        assert winner is not None  # the conflicting record is live, or we would have replaced it
        return winner

    def ping(self) -> bool:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._db.close()


class PostgresServiceState(_StateBase):
    """The shared state store: one connection per process, its use serialized by a lock.

    Autocommit: every write is durable in PostgreSQL before the method returns, so a 200 sent
    after ``remember`` survives the instance that sent it. A broken connection is replaced on
    the next call (``ping`` fails meanwhile, so the balancer's /readyz check sees it).
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._lock = threading.RLock()
        self._db = connect(url, application="pushprov-service")
        check_schema(self._db, url)
        self._db.execute(
            "INSERT INTO pushprov_meta (name, value) VALUES ('service_hmac_key', %s) "
            "ON CONFLICT (name) DO NOTHING",
            (secrets.token_bytes(32),),
        )
        # Every instance must fingerprint bodies with the same key to recognise a replay.
        row = self._db.execute(
            "SELECT value FROM pushprov_meta WHERE name = 'service_hmac_key'"
        ).fetchone()
        assert row is not None
        self._hmac_key = bytes(row[0])

    def __repr__(self) -> str:
        return f"PostgresServiceState(url={redacted_url(self._url)!r})"

    def _execute(self, query: str, params: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        with self._lock:
            if self._db.broken or self._db.closed:
                self._db = connect(self._url, application="pushprov-service")
            try:
                return self._db.execute(query, params)
            except psycopg.OperationalError:
                raise StoreUnavailableError(
                    f"lost the connection to {redacted_url(self._url)}"
                ) from None

    # -- clients ---------------------------------------------------------------------------

    def add_client(self, name: str, *, at: _dt.datetime) -> str:
        api_key, key_hash = self._new_client(name)
        try:
            self._execute(
                "INSERT INTO pushprov_clients (name, key_hash, created) VALUES (%s, %s, %s)",
                (name, key_hash, as_unix(at)),
            )
        except pg_errors.UniqueViolation:
            raise UsageError(f"client {name} exists (revoke it and add a new name)") from None
        return api_key

    def list_clients(self) -> list[ClientInfo]:
        return self._client_infos(
            self._execute(
                "SELECT name, created, revoked FROM pushprov_clients ORDER BY name"
            ).fetchall()
        )

    def revoke_client(self, name: str, *, at: _dt.datetime) -> None:
        cursor = self._execute(
            "UPDATE pushprov_clients SET revoked = %s WHERE name = %s AND revoked IS NULL",
            (as_unix(at), name),
        )
        self._clients_seen.clear()
        if cursor.rowcount != 1:
            raise UsageError(f"no active client named {name}")

    def _lookup_client(self, key_hash: str) -> str | None:
        row = self._execute(
            "SELECT name FROM pushprov_clients WHERE key_hash = %s AND revoked IS NULL",
            (key_hash,),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- rate limit ------------------------------------------------------------------------

    def count_request(self, client: str, window: int, requests: int = 1) -> int:
        row = self._execute(
            "INSERT INTO pushprov_rate (client, window_start, count) VALUES (%s, %s, %s) "
            "ON CONFLICT (client, window_start) DO UPDATE "
            "SET count = pushprov_rate.count + excluded.count RETURNING count",
            (client, window, requests),
        ).fetchone()
        assert row is not None
        if window % 60 == 0:  # now and then, forget old windows
            self._execute("DELETE FROM pushprov_rate WHERE window_start < %s", (window - 60,))
        return int(row[0])

    # -- idempotency -----------------------------------------------------------------------

    def recall(self, client: str, request_id: str, *, since: _dt.datetime) -> StoredResponse | None:
        row = self._execute(
            "SELECT fingerprint, status, body FROM pushprov_idempotency "
            "WHERE client = %s AND request_id = %s AND created >= %s",
            (client, request_id, as_unix(since)),
        ).fetchone()
        return None if row is None else StoredResponse(bytes(row[0]), int(row[1]), bytes(row[2]))

    def remember(
        self,
        client: str,
        request_id: str,
        response: StoredResponse,
        *,
        at: _dt.datetime,
        since: _dt.datetime,
    ) -> StoredResponse:
        """Store the answer unless another instance stored one since ``since``; return the winner.

        One statement: the insert, or the replacement of a record older than the window, or
        nothing (then the live record, committed by the other instance, is read back).
        """
        with self._lock:
            row = self._execute(
                "INSERT INTO pushprov_idempotency (client, request_id, fingerprint, status, "
                "body, created) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (client, request_id) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, status = excluded.status, "
                "body = excluded.body, created = excluded.created "
                "WHERE pushprov_idempotency.created < %s RETURNING 1",
                (client, request_id, response.fingerprint, response.status, response.body,
                 as_unix(at), as_unix(since)),
            ).fetchone()  # fmt: skip
            if self._purge_due():
                self._execute(
                    "DELETE FROM pushprov_idempotency WHERE created < %s", (as_unix(since),)
                )
            if row is not None:
                return response
            winner = self.recall(client, request_id, since=since)
        assert winner is not None  # the conflicting record is live, or we would have replaced it
        return winner

    def ping(self) -> bool:
        try:
            self._execute("SELECT 1").fetchone()
        except StoreUnavailableError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
