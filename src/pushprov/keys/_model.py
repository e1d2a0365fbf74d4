"""Key records and their states: what a key is, whose it is, what it may do, where it is."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import re

from .._clock import as_unix, from_unix
from .._errors import UsageError
from ..store import KeyRow
from ._evidence import Partner, RoleEvidence, add_evidence, parse_evidence

__all__ = [
    "ALLOWED_EDGES",
    "OURS",
    "Environment",
    "Format",
    "KeyRecord",
    "Role",
    "State",
    "check_owner",
    "jwk_role",
    "pgp_roles",
]

#: The owner name of our own keys; any other owner is a partner (e.g. ``google``).
OURS = "ours"
_OWNER = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class Environment(enum.StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class Format(enum.StrEnum):
    PGP = "pgp"  # id: primary fingerprint
    JWK = "jwk"  # id: kid


class State(enum.StrEnum):
    PENDING = "pending"  # known, not used
    ACTIVE = "active"  # used outgoing, accepted inbound
    RETIRING = "retiring"  # accepted inbound only
    RETIRED = "retired"  # refused
    DESTROYED = "destroyed"  # secret erased; tombstone and audit trail remain


class Role(enum.StrEnum):
    """Outgoing roles (sign with ours, encrypt to a partner's) and their inbound counterparts."""

    SIGN = "sign"  # ours, outgoing
    DECRYPT = "decrypt"  # ours, inbound
    ENCRYPT = "encrypt"  # partner's, outgoing
    VERIFY = "verify"  # partner's, inbound


#: Every allowed edge; anything else is refused. ``retiring -> active`` is the rollback;
#: ``pending -> destroyed`` discards a key that was never used.
ALLOWED_EDGES: frozenset[tuple[State, State]] = frozenset(
    {
        (State.PENDING, State.ACTIVE),
        (State.PENDING, State.DESTROYED),
        (State.ACTIVE, State.RETIRING),
        (State.RETIRING, State.ACTIVE),
        (State.RETIRING, State.RETIRED),
        (State.RETIRED, State.DESTROYED),
    }
)


def check_owner(owner: str) -> str:
    if not _OWNER.fullmatch(owner):
        raise UsageError("owner must be 1-32 of a-z, 0-9 and '-', e.g. 'google'")
    return owner


def pgp_roles(owner: str) -> frozenset[Role]:
    """An OpenPGP key does both jobs of its side: ours signs and decrypts, a partner's
    certificate is encrypted to and verifies. (A JWK does one job: ``jwk_role``.)"""
    ours = owner == OURS
    return frozenset({Role.SIGN, Role.DECRYPT} if ours else {Role.ENCRYPT, Role.VERIFY})


def jwk_role(owner: str, use: str | None) -> Role:
    """A JWK's one role from its JOSE ``use``: ours signs ("sig") or decrypts ("enc"); a
    partner's is verified against ("sig") or encrypted to ("enc")."""
    if use not in ("sig", "enc"):
        raise UsageError('a JWK does one job: give its use, "sig" or "enc"')
    if owner == OURS:
        return Role.SIGN if use == "sig" else Role.DECRYPT
    return Role.VERIFY if use == "sig" else Role.ENCRYPT


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """One key in one environment. Holds public material only; its repr shows no key bytes."""

    key_id: str
    env: Environment
    format: Format
    owner: str
    roles: frozenset[Role]
    label: str
    created: _dt.datetime
    expires: _dt.datetime | None
    state: State
    transitions: tuple[tuple[State, _dt.datetime], ...]
    last_used: _dt.datetime | None = None
    public: bytes = dataclasses.field(repr=False, default=b"")
    has_secret: bool = False
    partner: Partner | None = None  # None: promoted before outcomes were kept, or never promoted
    evidence: dict[str, RoleEvidence] = dataclasses.field(default_factory=dict, compare=False)
    #: An HSM key's token keys (``hsm.Custody`` text: pkcs11: URIs, never a PIN); None for a
    #: key whose secret, if any, is sealed in the store.
    custody: str | None = None

    @property
    def ours(self) -> bool:
        return self.owner == OURS

    @property
    def proven(self) -> bool:
        """Shown to work with the partner: verified, or in use from before outcomes were kept."""
        return self.partner is Partner.VERIFIED or (
            self.partner is None and self.state in (State.ACTIVE, State.RETIRING)
        )

    @property
    def in_hsm(self) -> bool:
        return self.custody is not None

    @property
    def usable_secret(self) -> bool:
        """Whether we can sign and decrypt with it: a sealed secret, or token keys."""
        return self.has_secret or (self.in_hsm and self.state is not State.DESTROYED)

    def entered(self, state: State) -> _dt.datetime | None:
        """When the record last entered ``state`` (None if never)."""
        times = [at for s, at in self.transitions if s is state]
        return times[-1] if times else None

    @property
    def changed(self) -> _dt.datetime:
        return self.transitions[-1][1]

    def expired(self, at: _dt.datetime) -> bool:
        return self.expires is not None and at >= self.expires

    def to_row(self) -> KeyRow:
        return KeyRow(
            key_id=self.key_id,
            env=self.env.value,
            format=self.format.value,
            owner=self.owner,
            roles=tuple(sorted(r.value for r in self.roles)),
            label=self.label,
            created=as_unix(self.created),
            expires=None if self.expires is None else as_unix(self.expires),
            state=self.state.value,
            transitions=tuple((s.value, as_unix(at)) for s, at in self.transitions),
            last_used=None if self.last_used is None else as_unix(self.last_used),
            public=self.public,
            has_secret=self.has_secret,
            partner=None if self.partner is None else self.partner.value,
            evidence=add_evidence(None, self.evidence.items()) if self.evidence else None,
            custody=self.custody,
        )

    @classmethod
    def from_row(cls, row: KeyRow) -> KeyRecord:
        return cls(
            key_id=row.key_id,
            env=Environment(row.env),
            format=Format(row.format),
            owner=row.owner,
            roles=frozenset(Role(r) for r in row.roles),
            label=row.label,
            created=from_unix(row.created),
            expires=None if row.expires is None else from_unix(row.expires),
            state=State(row.state),
            transitions=tuple((State(s), from_unix(at)) for s, at in row.transitions),
            last_used=None if row.last_used is None else from_unix(row.last_used),
            public=row.public,
            has_secret=row.has_secret,
            partner=None if row.partner is None else Partner(row.partner),
            evidence=parse_evidence(row.evidence),
            custody=row.custody,
        )
