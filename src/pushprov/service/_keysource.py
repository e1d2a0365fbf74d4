"""Where the service's keys come from: one immutable snapshot at a time, swapped on rotation."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Protocol

from .. import jose, openpgp

__all__ = ["FileKeySource", "KeySource", "KeyStatus", "ServiceKeys"]

SigningKey = openpgp.SecretKey | jose.JwkKey
RecipientKey = openpgp.Certificate | jose.JwkKey


@dataclasses.dataclass(frozen=True)
class KeyStatus:
    id: str
    format: str
    owner: str
    roles: tuple[str, ...]
    state: str
    expires: _dt.datetime | None
    created: _dt.datetime | None = None
    transitions: tuple[tuple[str, _dt.datetime], ...] = ()  # (state entered, when)


@dataclasses.dataclass(frozen=True, repr=False)
class ServiceKeys:
    """The keys of one environment at one version. Outgoing: actives; inbound: active+retiring."""

    version: str
    signers: tuple[SigningKey, ...]
    recipients: tuple[RecipientKey, ...]
    decryptors: tuple[SigningKey, ...]
    verifiers: tuple[RecipientKey, ...]
    published: tuple[str, ...]
    inventory: tuple[KeyStatus, ...]
    warnings: tuple[str, ...] = ()  # what `keys check` would report

    def __repr__(self) -> str:
        return f"ServiceKeys(version={self.version!r}, keys={len(self.inventory)})"


class KeySource(Protocol):
    def current(self, at: _dt.datetime) -> ServiceKeys:
        """The snapshot in force; cheap to call per request."""
        ...

    def note_use(self, key_ids: Iterable[str], at: _dt.datetime) -> None:
        """The keys sealed with (so the lifecycle knows they are still in use)."""
        ...


class FileKeySource:
    """Keys from files, all active: for demos and for tests that need no keystore."""

    def __init__(
        self,
        *,
        signers: Sequence[SigningKey],
        recipients: Sequence[RecipientKey],
        decryptors: Sequence[SigningKey] = (),
        verifiers: Sequence[RecipientKey] = (),
    ) -> None:
        inventory = []
        published = []
        for key in signers:
            if isinstance(key, openpgp.SecretKey):
                inventory.append(_status(key.fingerprint, "pgp", "ours", key.certificate.expires))
                published.append(key.certificate.armor())
            else:
                inventory.append(_status(key.kid, "jwk", "ours", key.expires))
                published.append(key.public().to_json())
        for cert in recipients:
            if isinstance(cert, openpgp.Certificate):
                inventory.append(_status(cert.fingerprint, "pgp", "google", cert.expires))
            else:
                inventory.append(_status(cert.kid, "jwk", "google", cert.expires))
        self._keys = ServiceKeys(
            version="files",
            signers=tuple(signers),
            recipients=tuple(recipients),
            decryptors=tuple(decryptors) or tuple(signers),
            verifiers=tuple(verifiers) or tuple(recipients),
            published=tuple(published),
            inventory=tuple(inventory),
        )

    def current(self, at: _dt.datetime) -> ServiceKeys:
        return self._keys

    def note_use(self, key_ids: Iterable[str], at: _dt.datetime) -> None:
        """Files have no lifecycle to tell."""


def _status(key_id: str, fmt: str, owner: str, expires: _dt.datetime | None) -> KeyStatus:
    roles = ("sign", "decrypt") if owner == "ours" else ("encrypt", "verify")
    return KeyStatus(key_id, fmt, owner, roles, "active", expires)
