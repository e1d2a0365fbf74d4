"""Per-worker machinery every request passes through: the rate limit, the crypto queue, the
request-time window (who the caller is: ``_callers``). Each is on the hot path, so each is
built to cost a few microseconds."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as _dt
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._answers import error
from ._config import ServiceConfig
from ._state import ServiceState

__all__ = ["CryptoQueue", "RateLimiter", "check_request_time"]

_T = TypeVar("_T")


class CryptoQueue:
    """Seals and opens run on the event loop's own thread, in batches of at most
    ``batch_seconds`` per turn of the loop; at most ``limit`` requests wait or run per worker,
    and beyond that the answer is 503 at once.

    Why on the loop: handing each seal to a thread cost ~70 us of CPU per request in wake-ups
    and GIL hand-offs (measured under bench/load.py), more than the rest of our bookkeeping
    together; one worker process per core gets both cores without threads. Why in batches:
    several seals back to back, then the requests' other work back to back, keep each in the
    CPU's caches (bench/load.py at 3072 bits: 1810 GOPCs/s with one seal per turn, ~2100 with
    3 ms batches, ~1.5 % more with 8 ms). Why bounded: between two batches the loop reads its
    sockets again, so a request that arrives behind a full queue is refused within about one
    batch's time, not after the whole backlog; and while the queue is refusing (a refusal in
    the last ``refusing_seconds``), batches shrink to ``refusing_batch_seconds`` so that the
    refusals stay fast (2 ms made them faster still, at ~10 % fewer answers served during an
    overload). ``before_batch`` runs first, a hook the service no longer needs: uvicorn sends
    each answer as it is written, so none waits for the next batch.
    """

    def __init__(
        self,
        limit: int,
        *,
        on_refusal: Callable[[], object] = lambda: None,
        batch_seconds: float = 0.008,
        refusing_batch_seconds: float = 0.003,
        refusing_seconds: float = 0.5,
        before_batch: Callable[[], object] = lambda: None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._limit = limit
        self._before_batch = before_batch
        self._batch_seconds = batch_seconds
        self._refusing_batch_seconds = refusing_batch_seconds
        self._refusing_seconds = refusing_seconds
        self._clock = clock
        self._on_refusal = on_refusal
        self._waiting: collections.deque[tuple[Callable[[], Any], asyncio.Future[Any]]] = (
            collections.deque()
        )
        self._scheduled = False
        self._refused_at = -math.inf

    @property
    def depth(self) -> int:
        return len(self._waiting)

    async def run(self, fn: Callable[[], _T], *, at: _dt.datetime, request_id: str | None) -> _T:
        """``fn()``'s result, or the 503 answer when the queue is full."""
        if len(self._waiting) >= self._limit:
            self._refused_at = self._clock()
            self._on_refusal()
            raise error(503, "OVERLOADED", "too many requests in flight", at, request_id)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_T] = loop.create_future()
        self._waiting.append((fn, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_batch)
        return await done

    def _run_batch(self) -> None:
        self._scheduled = False
        self._before_batch()
        now = self._clock()
        refusing = now - self._refused_at < self._refusing_seconds
        until = now + (self._refusing_batch_seconds if refusing else self._batch_seconds)
        while self._waiting:
            fn, done = self._waiting.popleft()
            if done.cancelled():  # its caller is gone: skip the work
                continue
            try:
                result = fn()
            except Exception as failure:  # raised again in the waiting request
                done.set_exception(failure)
            else:
                done.set_result(result)
            if self._clock() >= until:
                break
        if self._waiting:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run_batch)


class RateLimiter:
    """Requests per client per second, counted in the shared state store in batches.

    Asking the store on every request cost more CPU than the rest of the request's bookkeeping
    (measured under bench/load.py). A worker decides locally from the last total the store
    gave it plus what it admitted since, and hands its count to the store at most every
    ``sync_seconds``. Across workers or instances the limit can be overshot by what they admit
    between two syncs, ~``sync_seconds`` of traffic; within a worker it is exact.
    """

    def __init__(
        self,
        state: ServiceState,
        per_second: int,
        *,
        sync_seconds: float = 0.05,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._limit = per_second
        self._sync_seconds = sync_seconds
        self._monotonic = monotonic
        self._windows: dict[str, _Window] = {}  # each client's current window

    def admit(self, client: str, window: int) -> bool:
        entry = self._windows.get(client)
        if entry is None or entry.window != window:
            entry = self._windows[client] = _Window(window)
        allowed = entry.known + entry.unsynced < self._limit
        if allowed:
            entry.unsynced += 1
        now = self._monotonic()
        if entry.unsynced and now >= entry.next_sync:
            entry.known = self._state.count_request(client, window, entry.unsynced)
            entry.unsynced = 0
            entry.next_sync = now + self._sync_seconds
        return allowed


@dataclasses.dataclass(slots=True)
class _Window:
    window: int
    known: int = 0  # the count of all workers, as the store last told us
    unsynced: int = 0  # admitted here since
    next_sync: float = 0.0


def check_request_time(
    config: ServiceConfig, timestamp: str, request_id: str, at: _dt.datetime
) -> None:
    """``requestTimestamp`` (epoch milliseconds) must be within the configured skew of now."""
    skew = config.timestamp_skew.total_seconds()
    if abs(int(timestamp) / 1000 - at.timestamp()) > skew:
        raise error(
            400,
            "REQUEST_TIMESTAMP_OUT_OF_RANGE",
            f"requestTimestamp must be within {int(skew)} s",
            at,
            request_id,
        )
