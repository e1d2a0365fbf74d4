"""The service's per-worker machinery: the rate limiter's batching, the seal queue, the client
lookup cache (unit level; the HTTP behaviour is in test_service.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from pushprov.service import SqliteServiceState
from pushprov.service._answers import Answer
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


def test_crypto_queue_runs_seals_in_bounded_batches_and_refuses_beyond_its_limit() -> None:
    order: list[str] = []
    ticks = _Ticks()

    async def scenario() -> None:
        refused: list[int] = []
        queue = CryptoQueue(
            limit=3,
            on_refusal=lambda: refused.append(1),
            batch_seconds=2.0,
            refusing_batch_seconds=1.0,
            refusing_seconds=100.0,
            before_batch=lambda: order.append("flush"),
            clock=ticks,
        )

        def seal(name: str) -> str:
            order.append(name)
            ticks.now += 1.5  # within a 2.0 batch one more starts, within 1.0 none
            return name

        async def marker() -> None:
            while True:
                order.append("turn")
                await asyncio.sleep(0)

        def job(name: str) -> asyncio.Future[str]:
            return asyncio.ensure_future(
                queue.run(lambda: seal(name), at=NOW, request_id=f"r-{name}")
            )

        ticker = asyncio.ensure_future(marker())
        assert [await each for each in [job(name) for name in "abc"]] == ["a", "b", "c"]
        # Full: the fourth is refused at once, and the queue keeps its turns short meanwhile.
        jobs = [job(name) for name in "def"]
        await asyncio.sleep(0)
        assert queue.depth == 3
        with pytest.raises(Answer) as full:
            await queue.run(lambda: seal("x"), at=NOW, request_id="r-x")
        assert full.value.status == 503 and b"OVERLOADED" in full.value.body
        assert full.value.headers["retry-after"] == "1" and refused == [1]
        assert [await each for each in jobs] == ["d", "e", "f"]
        failing = queue.run(lambda: 1 // 0, at=NOW, request_id=None)
        with pytest.raises(ZeroDivisionError):
            await failing
        ticker.cancel()

    asyncio.run(scenario())
    assert "x" not in order
    seals = "".join(step if step not in ("turn", "flush") else f"|{step[0]}" for step in order)
    # Each batch begins with the hook that sends the answers written so far (f). Before the
    # refusal, a and b run back to back (b started within the budget) and the loop turns (t)
    # before c; after it, one seal per batch.
    assert "|fab|" in seals and "|fc" in seals
    assert "|fd|" in seals and "|fe|" in seals and "|ff" in seals
    assert seals.index("b|") < seals.index("|t", seals.index("b|")) < seals.index("c")


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
