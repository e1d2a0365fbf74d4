"""What every route works with, built once per worker by ``create_app``."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable

from .._errors import PushprovError
from ..keys import KeySource, ServiceKeys
from ._answers import keys_unavailable
from ._callers import Callers
from ._config import ServiceConfig
from ._metrics import Metrics
from ._runtime import CryptoQueue
from ._state import ServiceState

__all__ = ["Clock", "Context"]

Clock = Callable[[], _dt.datetime]


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    config: ServiceConfig
    keys: KeySource
    state: ServiceState
    clock: Clock
    metrics: Metrics
    queue: CryptoQueue
    callers: Callers

    def current_keys(self, at: _dt.datetime, request_id: str | None = None) -> ServiceKeys:
        """The key snapshot at ``at``, or the 503 answer when there is none to serve with."""
        try:
            return self.keys.current(at)
        except PushprovError:
            raise keys_unavailable(at, request_id) from None
