"""The service's state stores (SQLite and PostgreSQL): idempotency records outlive their window
only until the next purge, and both stores behave the same for callers."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from pushprov.store import (
    PostgresServiceState,
    ServiceState,
    SqliteServiceState,
    StoredResponse,
    StoreUnavailableError,
    _state,
    migrate,
)

from .postgres_support import Cluster

T = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=24)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_state(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ServiceState]:
    if request.param == "sqlite":
        return lambda: SqliteServiceState(tmp_path / "service.sqlite")
    cluster: Cluster = request.getfixturevalue("postgres")
    url = cluster.create_database(f"state_{request.node.name.split('[')[0][-40:]}")
    migrate(url)
    return lambda: PostgresServiceState(url)


def _answer(state: ServiceState, body: bytes) -> StoredResponse:
    return StoredResponse(state.body_fingerprint(body), 200, b"sealed:" + body)


def test_idempotency_records_are_purged_after_their_window(
    make_state: Callable[[], ServiceState],
) -> None:
    state = make_state()
    first = _answer(state, b"one")
    assert state.remember("c", "r-1", first, at=T, since=T - WINDOW) == first
    assert state.recall("c", "r-1", since=T - WINDOW) == first
    # A day and more later, a new answer is stored: the old record is purged (not just hidden).
    later = T + WINDOW + dt.timedelta(minutes=5)
    fresh = make_state()  # a new process: its first store of the minute purges
    fresh.remember("c", "r-2", _answer(fresh, b"two"), at=later, since=later - WINDOW)
    assert fresh.recall("c", "r-1", since=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) is None
    assert fresh.recall("c", "r-2", since=later - WINDOW) is not None


def test_a_live_record_wins_and_clients_are_hashed(make_state: Callable[[], ServiceState]) -> None:
    state = make_state()
    mine = _answer(state, b"mine")
    assert state.remember("c", "r", mine, at=T, since=T - WINDOW) == mine
    theirs = _answer(state, b"theirs")
    assert state.remember("c", "r", theirs, at=T, since=T - WINDOW) == mine
    key = state.add_client("backend", at=T)
    assert state.authenticate(key) == "backend"
    assert state.authenticate(key + "x") is None and state.authenticate("not-a-key") is None
    assert [c.name for c in state.list_clients()] == ["backend"]
    state.revoke_client("backend", at=T)
    assert state.authenticate(key) is None


def test_sqlite_write_waits_out_another_writer_with_short_sleeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own busy handler sleeps 1 ms at first; ours retries after 50 us, and a worker
    # blocked on the other worker's write lock must still get its record in.
    state = SqliteServiceState(tmp_path / "service.sqlite")
    other = sqlite3.connect(
        tmp_path / "service.sqlite", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # the other worker, mid-write
    sleeps: list[float] = []
    retrying = threading.Event()

    def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        retrying.set()
        time.sleep(seconds)

    monkeypatch.setattr(_state, "time", types.SimpleNamespace(
        sleep=recording_sleep, monotonic=time.monotonic
    ))  # fmt: skip

    def release() -> None:
        retrying.wait(timeout=10)
        other.execute("COMMIT")

    releaser = threading.Thread(target=release)
    releaser.start()
    record = _answer(state, b"body")
    assert state.remember("c", "r", record, at=T, since=T - WINDOW) == record
    releaser.join()
    assert sleeps and sleeps[0] == pytest.approx(50e-6)
    assert state.recall("c", "r", since=T - WINDOW) == record
    other.close()
    state.close()


def test_sqlite_write_gives_up_when_the_lock_is_never_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = SqliteServiceState(tmp_path / "service.sqlite")
    other = sqlite3.connect(tmp_path / "service.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_state, "_BUSY_TIMEOUT_SECONDS", 0.05)
    # Locked past the wait: the store is out of reach for now (503 to the caller), not a bug.
    with pytest.raises(StoreUnavailableError, match="SQLITE_BUSY"):
        state.remember("c", "r", _answer(state, b"x"), at=T, since=T - WINDOW)
    other.execute("ROLLBACK")
    assert state.remember("c", "r", _answer(state, b"x"), at=T, since=T - WINDOW)
    other.close()
    state.close()
