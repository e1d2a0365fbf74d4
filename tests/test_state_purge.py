"""Expired idempotency records are purged in bounded batches, on both stores (issue 14,
finding 11): old records go, live ones stay and a replay within the window is still answered
from its record."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from pushprov.store import (
    PostgresServiceState,
    ServiceState,
    SqliteServiceState,
    StoredResponse,
)

T = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=24)
BATCH = 1000
State = SqliteServiceState | PostgresServiceState


def _answer(state: ServiceState, body: bytes) -> StoredResponse:
    return StoredResponse(state.body_fingerprint(body), 200, b"sealed:" + body)


def test_expired_records_go_in_bounded_batches_and_live_ones_stay(
    make_state: Callable[[], State],
) -> None:
    state = make_state()
    state.purge_interval_seconds = 1e9  # only the explicit purges below run
    state._next_purge = time.monotonic() + 1e9
    old = T - WINDOW - dt.timedelta(minutes=1)
    for n in range(2 * BATCH + 500):
        state.remember("c", f"old-{n}", _answer(state, b"old"), at=old, since=old - WINDOW)
    live = _answer(state, b"live")
    assert state.remember("c", "live", live, at=T, since=T - WINDOW) == live

    started = time.perf_counter()
    assert state.purge_expired(T - WINDOW) == BATCH  # one bounded batch, not the backlog
    one_run = time.perf_counter() - started
    print(f"one purge of {BATCH} rows: {one_run * 1e3:.1f} ms")  # the figure for the report
    assert one_run < 1.0
    assert state.purge_expired(T - WINDOW) == BATCH
    assert state.purge_expired(T - WINDOW) == 500
    assert state.purge_expired(T - WINDOW) == 0

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert state.recall("c", "old-0", since=epoch) is None
    assert state.recall("c", f"old-{2 * BATCH + 499}", since=epoch) is None
    # The live record survives, and a replay within the window is answered from it.
    assert state.recall("c", "live", since=T - WINDOW) == live
    replay = _answer(state, b"a different body")
    assert state.remember("c", "live", replay, at=T, since=T - WINDOW) == live


def test_storing_an_answer_purges_one_batch_at_most_once_per_interval(
    make_state: Callable[[], State],
) -> None:
    state = make_state()
    state._next_purge = time.monotonic() + 1e9
    old = T - WINDOW - dt.timedelta(minutes=1)
    for n in range(BATCH + 10):
        state.remember("c", f"old-{n}", _answer(state, b"old"), at=old, since=old - WINDOW)
    fresh = make_state()  # a new process: its first store purges one batch
    fresh.remember("c", "new-1", _answer(fresh, b"new"), at=T, since=T - WINDOW)
    fresh.remember("c", "new-2", _answer(fresh, b"new"), at=T, since=T - WINDOW)  # too soon
    # Exactly ten old records are left: one batch went, the second store did not purge.
    assert fresh.purge_expired(T - WINDOW) == 10
