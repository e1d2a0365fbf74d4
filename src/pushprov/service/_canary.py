"""Which GOPCs a key on probation seals alone: the hot path's one decision about canaries.

A key on probation (``Partner.CANARY``) that shares its role with other active keys seals a
fraction of the GOPCs alone in that role (signed by it only, or encrypted to it only), at most
``per_minute`` a minute in this worker; every other GOPC is sealed with all active keys, as
before. A key alone in its role already (the first key, or a promotion that replaced the old
one) seals every GOPC alone, so each one is a canary GOPC for it. One chosen canary per GOPC,
so an outcome blames or credits one key per role.

Costs nothing when no key is on probation (one empty-tuple test per request).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .. import jose, openpgp
from ..keys import ServiceKeys, key_id_of

__all__ = ["CanarySelector"]

_Key = openpgp.SecretKey | openpgp.Certificate | jose.JwkKey
_S = TypeVar("_S", bound=_Key)
_R = TypeVar("_R", bound=_Key)


class CanarySelector:
    def __init__(
        self,
        fraction: float,
        per_minute: int,
        *,
        draw: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fraction = fraction
        self._per_minute = per_minute
        self._draw = draw
        self._monotonic = monotonic
        self._minute = -1
        self._taken = 0
        self._planned: ServiceKeys | None = None
        self._plan: tuple[tuple[str, ...], tuple[str, str] | None] = ((), None)

    def choose(
        self, keys: ServiceKeys, signers: list[_S], recipients: list[_R]
    ) -> tuple[list[_S], list[_R], tuple[str, ...]]:
        """The signers and recipients to seal with, and the roles this GOPC is a canary for."""
        if not keys.canaries:
            return signers, recipients, ()
        if self._planned is not keys:  # once per keyring snapshot, not per request
            self._plan = self._plan_for(keys, signers, recipients)
            self._planned = keys
        alone, candidate = self._plan
        if candidate is None or not (self._draw() < self._fraction and self._admit()):
            return signers, recipients, alone
        role, key_id = candidate
        if role == "sign":
            signers = [key for key in signers if key_id_of(key) == key_id]
        else:
            recipients = [key for key in recipients if key_id_of(key) == key_id]
        return signers, recipients, tuple(sorted((*alone, role)))

    @staticmethod
    def _plan_for(
        keys: ServiceKeys, signers: list[_S], recipients: list[_R]
    ) -> tuple[tuple[str, ...], tuple[str, str] | None]:
        """The roles in which a key on probation is alone already (every GOPC is a canary
        GOPC for it), and the one key on probation to seal alone now and then, if any."""
        alone: list[str] = []
        candidate: tuple[str, str] | None = None
        for role, key_id in keys.canaries:
            pool: list[_S] | list[_R] = signers if role == "sign" else recipients
            ids = [key_id_of(key) for key in pool]
            if key_id not in ids:
                continue  # not usable for this envelope
            if len(ids) == 1:
                alone.append(role)
            elif candidate is None:
                candidate = (role, key_id)
        return tuple(sorted(alone)), candidate

    def _admit(self) -> bool:
        minute = int(self._monotonic() // 60)
        if minute != self._minute:
            self._minute, self._taken = minute, 0
        if self._taken >= self._per_minute:
            return False
        self._taken += 1
        return True
