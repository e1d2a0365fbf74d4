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
    OutcomeRecord,
    OutcomeResult,
    ServiceState,
    SqliteServiceState,
    StoredResponse,
    StoreUnavailableError,
    _state,
)

from .service_support import ping_while_locked

T = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=24)


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


def test_readiness_fails_for_a_while_after_any_statement_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why: on a full disk the probe's own small write can still succeed while every request's
    # insert fails (CI saw /readyz 200 between 503s). Readiness follows the requests.
    clock = [1000.0]
    state = SqliteServiceState(tmp_path / "service.sqlite", monotonic=lambda: clock[0])
    assert state.ping()
    other = sqlite3.connect(tmp_path / "service.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_state, "_BUSY_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(StoreUnavailableError):
        state.remember("c", "r", _answer(state, b"x"), at=T, since=T - WINDOW)
    other.execute("ROLLBACK")
    other.close()
    # The lock is gone and a statement would succeed, yet not ready within the window...
    assert state.list_clients() == []
    clock[0] += state.unready_after_failure_seconds - 0.01
    assert not state.ping()
    # ...and answered without waiting for the store's lock, which a stalled request may hold.
    assert not ping_while_locked(state)
    clock[0] += 0.02
    assert state.ping()
    state.close()


def test_an_answer_keeps_the_keys_that_sealed_it(make_state: Callable[[], ServiceState]) -> None:
    state = make_state()
    keys = '{"encrypt":["G1","G2"],"sign":["A"]}'
    answer = StoredResponse(state.body_fingerprint(b"b"), 200, b"sealed", keys)
    state.remember("c", "r", answer, at=T, since=T - WINDOW)
    recalled = state.recall("c", "r", since=T - WINDOW)
    assert recalled is not None and recalled.keys == keys


def _sealed(state: ServiceState, client: str, request_id: str, at: dt.datetime) -> None:
    fingerprint = state.body_fingerprint(request_id.encode())
    answer = StoredResponse(fingerprint, 200, b"s", '{"sign":["A"]}')
    state.remember(client, request_id, answer, at=at, since=at - WINDOW)


def test_outcomes_join_answers_once_and_only_the_clients_own(
    make_state: Callable[[], ServiceState],
) -> None:
    state = make_state()
    _sealed(state, "alice", "r-1", T)
    _sealed(state, "bob", "r-bob", T)
    since = T - dt.timedelta(hours=1)
    first = state.record_outcome("alice", "r-1", "accepted", since=since)
    assert first == OutcomeRecord(OutcomeResult.RECORDED, '{"sign":["A"]}')
    # The same again: idempotent, and not handed the keys again (it must not count twice).
    assert state.record_outcome("alice", "r-1", "accepted", since=since) == OutcomeRecord(
        OutcomeResult.DUPLICATE
    )
    # Another outcome for it later: the first stands.
    again = state.record_outcome("alice", "r-1", "rejected:DECRYPTION_FAILED", since=since)
    assert again.result is OutcomeResult.CONFLICTING and again.keys is None
    # Bob's requestId, reported by Alice: refused, and nothing of Bob's record comes back.
    theirs = state.record_outcome("alice", "r-bob", "rejected", since=since)
    assert theirs == OutcomeRecord(OutcomeResult.REFUSED)
    # ... and Bob's own report still counts: Alice's attempt changed nothing.
    assert state.record_outcome("bob", "r-bob", "accepted", since=since).result is (
        OutcomeResult.RECORDED
    )
    assert state.record_outcome("alice", "r-never", "accepted", since=since) == OutcomeRecord(
        OutcomeResult.UNKNOWN
    )


def test_a_late_outcome_is_counted_not_trusted(make_state: Callable[[], ServiceState]) -> None:
    state = make_state()
    _sealed(state, "c", "old", T - dt.timedelta(hours=2))
    late = state.record_outcome("c", "old", "accepted", since=T - dt.timedelta(hours=1))
    assert late == OutcomeRecord(OutcomeResult.LATE)
    # Past the idempotency window the record is purged: then the requestId is unknown.
    later = T + WINDOW
    state.purge_expired(later - WINDOW)
    gone = state.record_outcome("c", "old", "accepted", since=later - dt.timedelta(hours=1))
    assert gone.result is OutcomeResult.UNKNOWN


def test_an_answer_stored_again_after_its_window_forgets_the_old_outcome(
    make_state: Callable[[], ServiceState],
) -> None:
    state = make_state()
    _sealed(state, "c", "r", T - WINDOW - dt.timedelta(hours=1))
    old_since = T - WINDOW - dt.timedelta(hours=2)
    assert state.record_outcome("c", "r", "accepted", since=old_since).result is (
        OutcomeResult.RECORDED
    )
    _sealed(state, "c", "r", T)  # the requestId reused after its window: a new answer
    fresh = state.record_outcome("c", "r", "rejected", since=T - dt.timedelta(hours=1))
    assert fresh.result is OutcomeResult.RECORDED
