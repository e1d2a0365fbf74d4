"""What the partner's outcomes say about each key: uses and outcomes per role, and the
partner state a new key moves through (canary -> verified, or canary -> stopped).

A key's evidence is stored with its record (``evidence``, JSON, under the row MAC) and
updated without a new keyring version, like ``last_used``: counts are added, last times only
move forward. It holds key fingerprints' counts and times, never card data.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Mapping

__all__ = ["Evidence", "Partner", "RoleEvidence", "add_evidence", "parse_evidence"]


class Partner(enum.StrEnum):
    """Where a key stands with the partner, by the outcomes of GOPCs it sealed alone."""

    CANARY = "canary"  # on probation: a fraction of GOPCs is sealed with it alone in its role
    VERIFIED = "verified"  # enough canary GOPCs accepted, none rejected because of it
    STOPPED = "stopped"  # a canary GOPC was rejected because of it: sealed alongside only


@dataclasses.dataclass(frozen=True, slots=True)
class RoleEvidence:
    """One key in one role. Times are Unix seconds."""

    sealed: int = 0  # GOPCs signed with it (sign) or encrypted to it (encrypt); opened (decrypt)
    canary: int = 0  # of those, sealed with it alone in this role while it was on probation
    accepted: int = 0  # outcomes reported for GOPCs it sealed
    rejected: int = 0
    canary_accepted: int = 0
    canary_rejected: int = 0  # canary GOPCs rejected for a reason this role can cause
    last: int | None = None  # last sealed with (or, for decrypt, last opened a message)
    last_accepted: int | None = None  # the partner last showed it used the key (an acceptance)
    last_rejected: int | None = None

    def plus(self, other: RoleEvidence) -> RoleEvidence:
        return RoleEvidence(
            sealed=self.sealed + other.sealed,
            canary=self.canary + other.canary,
            accepted=self.accepted + other.accepted,
            rejected=self.rejected + other.rejected,
            canary_accepted=self.canary_accepted + other.canary_accepted,
            canary_rejected=self.canary_rejected + other.canary_rejected,
            last=_later(self.last, other.last),
            last_accepted=_later(self.last_accepted, other.last_accepted),
            last_rejected=_later(self.last_rejected, other.last_rejected),
        )

    def as_json(self) -> dict[str, int]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v}


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


#: A key's evidence by role (``Role`` values).
Evidence = Mapping[str, RoleEvidence]

_FIELDS = frozenset(field.name for field in dataclasses.fields(RoleEvidence))


def parse_evidence(text: str | None) -> dict[str, RoleEvidence]:
    """The stored JSON, read strictly: anything else than our own shape reads as none."""
    if not text:
        return {}
    try:
        document = json.loads(text)
        return {
            str(role): RoleEvidence(**{k: int(v) for k, v in values.items() if k in _FIELDS})
            for role, values in document.items()
        }
    except (ValueError, TypeError, AttributeError):
        return {}


def add_evidence(text: str | None, deltas: Iterable[tuple[str, RoleEvidence]]) -> str:
    """The stored JSON with ``deltas`` (role, counts and times) added, canonically encoded."""
    merged = parse_evidence(text)
    for role, delta in deltas:
        merged[role] = merged.get(role, RoleEvidence()).plus(delta)
    document = {role: merged[role].as_json() for role in sorted(merged)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
