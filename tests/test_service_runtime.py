"""The service's per-worker machinery: the rate limiter's batching, the seal queue, the client
lookup cache and the connection board (unit level; the HTTP behaviour is in test_service.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest

from pushprov.service import SqliteServiceState
from pushprov.service._answers import Answer
from pushprov.service._http import Board
from pushprov.service._runtime import CryptoQueue, RateLimiter

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


class _Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_exact_within_a_worker_and_shared_through_the_store(tmp_path: Path) -> None:
    ticks = _Ticks()
    first = RateLimiter(SqliteServiceState(tmp_path / "s.sqlite"), 5, monotonic=ticks)
    # Within one worker, with no sync due, the sixth request of the window is refused.
    assert [first.admit("c", 7) for _ in range(6)] == [True] * 5 + [False]
    # Another worker learns the count from the store once it syncs: 1 synced at first admit.
    other_state = SqliteServiceState(tmp_path / "s.sqlite")
    assert other_state.count_request("c", 7, 0) == 1
    ticks.now += 1.0  # sync due: the refused request was not counted, the four others are
    assert not first.admit("c", 7)
    second = RateLimiter(other_state, 5, monotonic=ticks)
    assert second.admit("c", 7)  # its first admit syncs and sees 5 + 1
    assert not second.admit("c", 7)
    assert first.admit("c", 8)  # a new window starts from zero


def test_crypto_queue_refuses_beyond_its_limit_and_runs_one_seal_per_loop_turn() -> None:
    order: list[str] = []

    async def scenario() -> None:
        refused: list[int] = []
        queue = CryptoQueue(limit=2, on_refusal=lambda: refused.append(1))

        def seal(name: str) -> str:
            order.append(name)
            return name

        async def marker() -> None:
            for turn in range(3):
                order.append(f"turn-{turn}")
                await asyncio.sleep(0)

        first = asyncio.ensure_future(queue.run(lambda: seal("a"), at=NOW, request_id="r-a"))
        second = asyncio.ensure_future(queue.run(lambda: seal("b"), at=NOW, request_id="r-b"))
        ticker = asyncio.ensure_future(marker())
        await asyncio.sleep(0)
        assert queue.depth == 2
        with pytest.raises(Answer) as full:
            await queue.run(lambda: seal("c"), at=NOW, request_id="r-c")
        assert full.value.status == 503 and b"OVERLOADED" in full.value.body
        assert full.value.headers["retry-after"] == "1" and refused == [1]
        assert await first == "a" and await second == "b"
        await ticker
        failing = queue.run(lambda: 1 // 0, at=NOW, request_id=None)
        with pytest.raises(ZeroDivisionError):
            await failing

    asyncio.run(scenario())
    assert "c" not in order
    # Another task ran between the two seals: the loop was not held for both.
    assert order.index("a") < order.index("turn-1") < order.index("b")


def test_a_revocation_elsewhere_applies_within_the_cache_time(tmp_path: Path) -> None:
    ticks = _Ticks()
    worker = SqliteServiceState(tmp_path / "s.sqlite", monotonic=ticks)
    cli = SqliteServiceState(tmp_path / "s.sqlite")
    key = cli.add_client("backend", at=NOW)
    assert worker.authenticate(key) == "backend"
    cli.revoke_client("backend", at=NOW)
    assert cli.authenticate(key) is None  # the revoking object forgets at once
    ticks.now += worker.client_cache_seconds / 2
    assert worker.authenticate(key) == "backend"  # still trusted from the cache
    ticks.now += worker.client_cache_seconds
    assert worker.authenticate(key) is None


def test_board_gives_the_excess_over_a_fair_share(tmp_path: Path) -> None:
    (tmp_path / "workers").write_text("2")
    busy = Board(tmp_path)
    busy.connections = 8
    busy.publish()  # the other worker has not published yet: it still counts
    assert busy.excess == 1
    assert busy.hand_back() and not busy.hand_back()  # one per tick
    other = tmp_path / "worker-1"
    other.write_text("2")
    busy.connections = 6
    busy.publish()
    assert busy.excess == 1  # 8 connections, 2 workers: 6 is over the share of 4
    busy.connections = 3
    busy.publish()
    assert busy.excess == 0  # 5 connections: a share is 3 (rounded up), 3 is within it
    os.utime(other, (0, 0))  # a worker that stopped publishing long ago is gone...
    busy.publish()
    assert busy.excess == 1  # ...so its count is not in the total: 3 over 2 workers
