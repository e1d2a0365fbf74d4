"""What every route works with, built once per worker by ``create_app``."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable

from .._errors import PushprovError, StoreError
from ..keys import KeySource, ServiceKeys
from ._answers import keys_unavailable, refusal
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
        """The key snapshot at ``at``, or the 503 answer when there is none to serve with (a
        store that cannot be read: its class's answer, 503 ``SERVICE_UNAVAILABLE`` when it is
        unreachable)."""
        try:
            return self.keys.current(at)
        except StoreError as failure:  # the store, not the keys: its own outcome
            raise refusal(failure, at, request_id) from None
        except PushprovError:
            raise keys_unavailable(at, request_id) from None
