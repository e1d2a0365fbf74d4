"""The service state on PostgreSQL, apart from the SQLite one so that only a
``postgresql://`` backend loads psycopg."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ._errors import StoreCorruptError, StoreUnavailableError
from ._postgres import MISSING_SCHEMA, check_schema, connect, redacted_url
from ._schema import POSTGRES
from ._state import _Result, _Sql, _SqlServiceState

__all__ = ["PostgresServiceState"]


class PostgresServiceState(_SqlServiceState):
    """The shared state store: one connection per process.

    Autocommit: every write is durable in PostgreSQL before the method returns, so a 200 sent
    after ``remember`` survives the instance that sent it. A broken connection is replaced on
    the next call (``ping`` fails meanwhile, so the balancer's /readyz check sees it).
    """

    _sql = _Sql.of(POSTGRES)
    _duplicate = pg_errors.UniqueViolation

    def __init__(self, url: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(monotonic=monotonic)
        self._url = url
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

    def _run(self, query: str, params: tuple[Any, ...]) -> _Result:
        with self._lock:
            if self._db.broken or self._db.closed:
                self._db = connect(self._url, application="pushprov-service")
            try:
                cursor = self._db.execute(query, params)
                return _Result(cursor.fetchall() if cursor.description else [], cursor.rowcount)
            except psycopg.OperationalError:
                raise StoreUnavailableError(
                    f"lost the connection to {redacted_url(self._url)}"
                ) from None
            except MISSING_SCHEMA:
                raise StoreCorruptError("the service tables do not match the schema") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()
