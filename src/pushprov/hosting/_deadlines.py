"""Dropping slow clients (issue 14, finding 2): uvicorn has a keep-alive timeout but no
deadline for a request's headers or for the whole request, and its ``limit_concurrency``
is only checked once the headers are in, so one byte every few seconds held a connection
for ever. ``DeadlineProtocol`` is uvicorn's httptools protocol (pinned in pyproject) with
one timer per connection and a per-worker connection cap checked at accept.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DeadlineProtocol"]


class DeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose headers are not in ``header_timeout`` seconds after accept
    (or after the previous response), or whose request (body included) is not in
    ``request_timeout`` seconds; refuses a connection beyond ``max_connections`` at once.
    The three limits are attributes of the uvicorn config (see ``uvicorn_config``)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.config.max_connections:  # type: ignore[attr-defined]
            transport.close()  # connection_lost removes it from the count
            return
        self._arm(self.config.header_timeout)  # type: ignore[attr-defined]

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._started = self.loop.time()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        # The rest of the request (the body) must arrive within the whole-request deadline.
        if self._deadline is not None:
            elapsed = self.loop.time() - self._started
            remaining = max(self.config.request_timeout - elapsed, 0.0)  # type: ignore[attr-defined]
            self._disarm()
            self._deadline = self.loop.call_later(remaining, self._expire)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the request is in; the app's own time is the app's business
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.config.header_timeout)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
