"""uvicorn's httptools protocol with two changes for the worker processes of ``pushprov serve``.

* One write per response. uvicorn writes a response's head and body in two calls; over TLS
  each becomes a record, a send() and a TCP segment. Holding the writes until the loop's next
  turn joins them (measured under bench/load.py: ~15 us of server CPU less per request, and
  half the load generator's), and the responses of a turn go out together: fewer wake-ups of
  the clients, ~3 % more GOPCs/s than a send at the end of each response. ``flush_writes``
  sends them sooner; the crypto queue calls it before each batch of seals, so answers do not
  wait for the batch.
* Connections spread over the workers. The workers share one listening socket, and a burst
  of new connections often lands on whichever worker woke first: all of wrk's 8 on one worker
  in about a third of our runs, leaving a core idle (seals run on each worker's own loop). Each
  worker publishes its live connection count on a board (one small file per worker in a
  directory ``serve`` makes, beside a ``workers`` file with how many there should be); a
  worker holding more than its share of all connections answers the next request
  on one of them with ``Connection: close``, and the client's reconnection is accepted by a
  less busy worker, which is the one waiting in accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import weakref
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BOARD_ENV", "HttpProtocol", "flush_writes"]

BOARD_ENV = "PUSHPROV_WORKER_BOARD"

_TICK_SECONDS = 0.1  # how often a worker publishes its count and reads the others'
_STALE_SECONDS = 1.0  # a count older than this belongs to a worker that is gone


# Per event loop (tests run several, one per thread; a closed loop's entry goes with it): the
# transports holding writes.
_unflushed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Coalescing]] = (
    weakref.WeakKeyDictionary()
)


def flush_writes() -> None:
    """Send what every connection of this thread's loop holds, one write each."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no running loop: nothing can be held
        return
    for transport in _unflushed.pop(loop, ()):
        transport.flush()


class _Coalescing:
    """A transport whose writes within one loop turn go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            held = _unflushed.get(self._loop)
            if held is None:
                held = _unflushed[self._loop] = []
                self._loop.call_soon(flush_writes)
            held.append(self)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Board:
    """This worker's live connections, and how many it holds beyond its share."""

    def __init__(self, directory: Path, *, clock: Any = time.time) -> None:
        self._directory = directory
        self._mine = directory / f"worker-{os.getpid()}"
        # A worker that has had no connection yet publishes nothing: count it anyway.
        try:
            self._expected = int((directory / "workers").read_text())
        except (OSError, ValueError):
            self._expected = 1
        self._clock = clock
        self.connections = 0
        self.excess = 0
        self._started = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._started:
            self._started = True
            loop.call_soon(self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(OSError):
            self.publish()
        loop.call_later(_TICK_SECONDS, self._tick, loop)

    def publish(self) -> None:
        """Write our count, read everyone's, and work out our excess over a fair share."""
        self._mine.write_text(str(self.connections))
        now = self._clock()
        counts = []
        for entry in os.scandir(self._directory):
            if not entry.name.startswith("worker-"):
                continue
            with contextlib.suppress(OSError, ValueError):
                if now - entry.stat().st_mtime <= _STALE_SECONDS:
                    counts.append(int(Path(entry.path).read_text()))
        share = -(-sum(counts) // max(len(counts), self._expected))  # ceiling
        # One hand-back per tick at most: the counts it acts on are a tick old, and acting on
        # stale counts twice makes connections bounce between workers.
        self.excess = 1 if self.connections > share else 0

    def hand_back(self) -> bool:
        """Whether to close the connection of the request at hand after answering it."""
        if self.excess <= 0:
            return False
        self.excess -= 1
        return True


_boards: dict[str, Board] = {}  # this process's board, once its first connection came


def _worker_board() -> Board | None:
    directory = os.environ.get(BOARD_ENV)
    if not directory:
        return None
    board = _boards.get(directory)
    if board is None:
        board = _boards[directory] = Board(Path(directory))
    return board


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
        board = _worker_board()
        if board is not None:
            board.connections += 1
            board.start(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        board = _worker_board()
        if board is not None:
            board.connections -= 1

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        board = _worker_board()
        if board is not None and self.cycle is not None and board.hand_back():
            self.cycle.keep_alive = False  # uvicorn then sends Connection: close and closes
