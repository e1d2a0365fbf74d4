"""Where the faces (service, sandbox) get their keys: one immutable snapshot at a time, swapped
in one step on rotation — from key files, or from the key store."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .. import jose, openpgp
from .._errors import KeyUnusableError, PushprovError, StoreError
from ._evidence import Partner, RoleEvidence
from ._keyring import Keyring, SecretCache
from ._keystore import Keystore
from ._model import Environment, Format, Role, State
from ._rules import findings

__all__ = [
    "FileKeySource",
    "KeySource",
    "KeyStatus",
    "Sealing",
    "ServiceKeys",
    "StoreKeySource",
]

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
    partner: str | None = None  # canary, verified, stopped (``Partner``)
    evidence: tuple[tuple[str, RoleEvidence], ...] = ()  # by role, as last read


_ENCODED: dict[tuple[tuple[str, ...], ...], str] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class Sealing:
    """Which keys sealed one GOPC (ids only), and the roles in which it was a canary GOPC:
    sealed with a key on probation alone in that role."""

    signed_with: tuple[str, ...]
    encrypted_to: tuple[str, ...]
    canary: tuple[str, ...] = ()  # "sign", "encrypt"

    def encode(self) -> str:
        """Compact JSON (key ids are hex or kids: nothing to escape), kept with the answer.
        The same few combinations recur on every request: each is built once."""
        key = (self.signed_with, self.encrypted_to, self.canary)
        text = _ENCODED.get(key)
        if text is None:
            if len(_ENCODED) >= 256:  # bounded: keys are few, rotations rare
                _ENCODED.clear()
            text = _ENCODED[key] = json.dumps(
                {"sign": self.signed_with, "encrypt": self.encrypted_to, "canary": self.canary},
                separators=(",", ":"),
            )
        return text

    @classmethod
    def decode(cls, text: str) -> Sealing | None:
        try:
            document = json.loads(text)
            return cls(
                tuple(str(i) for i in document["sign"]),
                tuple(str(i) for i in document["encrypt"]),
                tuple(str(r) for r in document["canary"] if r in ("sign", "encrypt")),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclasses.dataclass(frozen=True, repr=False)
class ServiceKeys:
    """The keys of one environment at one version. Outgoing: actives; inbound: active+retiring."""

    version: str
    signers: tuple[SigningKey, ...]
    recipients: tuple[RecipientKey, ...]
    decryptors: tuple[SigningKey, ...]
    verifiers: tuple[RecipientKey, ...]
    published: tuple[tuple[Format, str], ...]  # our active public keys, as handed to Google
    inventory: tuple[KeyStatus, ...]
    warnings: tuple[str, ...] = ()  # what `keys check` would report
    #: Keys on probation, OpenPGP: (role, key id), "sign" or "encrypt", at most one per role.
    canaries: tuple[tuple[str, str], ...] = ()
    #: The primary id of each (sub)key fingerprint we decrypt with (for the evidence).
    decryption_owners: dict[str, str] = dataclasses.field(default_factory=dict)
    # HSM keys in use, each with a check that proves its token usable now (key id, check).
    token_checks: tuple[tuple[str, Callable[[], None]], ...] = ()

    def token_problems(self) -> list[str]:
        """HSM keys whose token cannot sign or decrypt now (each check is a real sign and
        decrypt in the token; a lost token or session is opened again on the way)."""
        problems = []
        for key_id, check in self.token_checks:
            try:
                check()
            except PushprovError as failure:
                problems.append(f"key {key_id}: {failure.code}")
        return problems

    def __repr__(self) -> str:
        return f"ServiceKeys(version={self.version!r}, keys={len(self.inventory)})"

    # An envelope picks its keys by type: OpenPGP keys for "pgp", JWKs for "jwe".

    def outgoing(
        self, envelope: str, *, strict: bool = True
    ) -> tuple[list[SigningKey], list[RecipientKey]]:
        """Signers and recipients: OpenPGP uses every active key; JWE one of each (the keyring
        keeps one active JWK per role). ``strict``: both roles or ``KeyUnusableError``."""
        secret, public = _kinds(envelope)
        signers = [key for key in self.signers if isinstance(key, secret)]
        recipients = [key for key in self.recipients if isinstance(key, public)]
        if strict and (not signers or not recipients):
            raise KeyUnusableError(f"no active {envelope} keys for both roles")
        return signers, recipients

    def inbound(self, envelope: str) -> tuple[list[SigningKey], list[RecipientKey]]:
        """Decryptors and verifiers (active and retiring keys)."""
        secret, public = _kinds(envelope)
        return (
            [key for key in self.decryptors if isinstance(key, secret)],
            [key for key in self.verifiers if isinstance(key, public)],
        )

    def public_keys(self, envelope: str) -> list[str]:
        """Our active public keys for ``envelope``: armored certificates, or JWKs as JSON."""
        wanted = Format.PGP if envelope == "pgp" else Format.JWK
        return [text for key_format, text in self.published if key_format is wanted]


def _kinds(envelope: str) -> tuple[type[SigningKey], type[RecipientKey]]:
    if envelope == "pgp":
        return openpgp.SecretKey, openpgp.Certificate
    return jose.JwkKey, jose.JwkKey


class KeySource(Protocol):
    def current(self, at: _dt.datetime) -> ServiceKeys:
        """The snapshot in force; cheap to call per request."""
        ...

    def note_seal(self, sealing: Sealing, at: _dt.datetime) -> None:
        """The keys a GOPC was sealed with (so the lifecycle knows they are in use)."""
        ...

    def note_open(self, decryption_key: str, at: _dt.datetime) -> None:
        """One of our keys (by any of its fingerprints) opened a partner's message."""
        ...

    def lifecycle(self) -> Keystore | None:
        """Where outcomes are recorded and partner states decided, or None (key files)."""
        ...

    def invalidate(self) -> None:
        """Read the keys again on the next request: a change was committed."""
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
        published: list[tuple[Format, str]] = []
        for key in signers:
            if isinstance(key, openpgp.SecretKey):
                inventory.append(_status(key.fingerprint, "pgp", "ours", key.certificate.expires))
                published.append((Format.PGP, key.certificate.armor()))
            else:
                inventory.append(_status(key.kid, "jwk", "ours", key.expires))
                published.append((Format.JWK, key.public().to_json()))
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

    def note_seal(self, sealing: Sealing, at: _dt.datetime) -> None:
        """Files have no lifecycle to tell."""

    def note_open(self, decryption_key: str, at: _dt.datetime) -> None:
        """Files have no lifecycle to tell."""

    def lifecycle(self) -> Keystore | None:
        return None

    def invalidate(self) -> None:
        pass  # files are read once


def _status(key_id: str, fmt: str, owner: str, expires: _dt.datetime | None) -> KeyStatus:
    roles = ("sign", "decrypt") if owner == "ours" else ("encrypt", "verify")
    return KeyStatus(key_id, fmt, owner, roles, "active", expires)


_log = logging.getLogger("pushprov.keys")
_USE_RECORD_INTERVAL = 60.0  # seconds between drain-window use records per key and process
#: Seconds between evidence writes per process: one write transaction for every key's counts.
EVIDENCE_INTERVAL = 1.0


class StoreKeySource:
    """Keys from the key store, re-read every ``refresh`` seconds and swapped in one step.

    A rotation made through any process (CLI, another instance) is picked up without a
    restart: at the latest ``refresh`` seconds after its commit, sooner when ``invalidate`` is
    called (PostgreSQL: on each NOTIFY). Each thread gets its own store connection (SQLite
    connections are per thread); parsed secret keys are shared through one cache.
    """

    def __init__(
        self,
        open_keystore: Callable[[SecretCache], Keystore],
        env: Environment,
        *,
        refresh: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_keystore
        self._env = env
        self._refresh = refresh
        self._monotonic = monotonic
        self._cache = SecretCache()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._keys: ServiceKeys | None = None
        self._loaded = float("-inf")
        # Bumped by invalidate(); a read that began before the bump does not count as fresh.
        self._generation = 0
        self._loaded_generation = 0
        # Reloads in the order they began: one that began earlier never replaces a later one's
        # snapshot (the event loop and the outcomes thread may reload at once).
        self._reads = 0
        self._loaded_read = 0
        self._recorded: dict[str, float] = {}
        # Uses since the last write, by (key id, role): [count, canary count, last Unix time].
        self._uses: dict[tuple[str, Role], list[int]] = {}
        self._next_flush = monotonic() + EVIDENCE_INTERVAL

    def _keystore(self) -> Keystore:
        keystore: Keystore | None = getattr(self._local, "keystore", None)
        if keystore is None:
            keystore = self._open(self._cache)
            self._local.keystore = keystore
        return keystore

    def invalidate(self) -> None:
        """Re-read the keyring on the next request (a new version was committed)."""
        with self._lock:
            self._generation += 1

    def current(self, at: _dt.datetime) -> ServiceKeys:
        now = self._monotonic()
        keys = self._keys
        generation = self._generation
        if (
            keys is None
            or generation != self._loaded_generation
            or now - self._loaded >= self._refresh
        ):
            keystore = self._keystore()  # a thread's first opens one: before the count
            with self._lock:
                self._reads += 1
                read = self._reads
            keys = _service_keys(keystore.snapshot(self._env), at, keystore)
            with self._lock:
                if read > self._loaded_read:
                    self._keys, self._loaded, self._loaded_generation = keys, now, generation
                    self._loaded_read = read
                elif self._keys is not None:
                    keys = self._keys  # a reload that began later has stored a newer one
        return keys

    def note_seal(self, sealing: Sealing, at: _dt.datetime) -> None:
        """Count the use in memory; the store hears of it at most once a second (evidence)
        and once a minute per key (the drain window: a key in use must not be retired)."""
        when = int(at.timestamp())
        canary = sealing.canary
        new_key = False
        for role, ids in ((Role.SIGN, sealing.signed_with), (Role.ENCRYPT, sealing.encrypted_to)):
            alone = 1 if role.value in canary else 0
            for key_id in ids:
                use = self._uses.get((key_id, role))
                if use is None:
                    self._uses[(key_id, role)] = [1, alone, when]
                    new_key = new_key or key_id not in self._recorded
                else:
                    use[0] += 1
                    use[1] += alone
                    use[2] = when
        if new_key:
            # A key's first use in this process is recorded at once (the drain window).
            self._next_flush = self._monotonic() + EVIDENCE_INTERVAL
            self._flush_beside_a_request(at)
        else:
            self._maybe_flush(at)

    def note_open(self, decryption_key: str, at: _dt.datetime) -> None:
        keys = self._keys
        owner = None if keys is None else keys.decryption_owners.get(decryption_key)
        key_id = owner or decryption_key
        use = self._uses.setdefault((key_id, Role.DECRYPT), [0, 0, 0])
        use[0] += 1
        use[2] = int(at.timestamp())
        self._maybe_flush(at)

    def _maybe_flush(self, at: _dt.datetime) -> None:
        now = self._monotonic()
        if now >= self._next_flush:
            self._next_flush = now + EVIDENCE_INTERVAL
            self._flush_beside_a_request(at)

    def _flush_beside_a_request(self, at: _dt.datetime) -> None:
        # Evidence is advisory: a write that fails (store away, a lock conflict) must not fail
        # the GOPC it rides on. What it held is counted again and written on a later turn.
        try:
            self.flush(at)
        except StoreError as error:
            _log.warning("key use not recorded yet (%s); kept for the next write", error.code)

    def flush(self, at: _dt.datetime) -> None:
        """Write the uses counted since the last write (and the drain window's last use); if
        the store refuses, the uses stay counted for the next write."""
        uses, self._uses = self._uses, {}
        if not uses:
            return
        deltas: dict[str, list[tuple[Role, RoleEvidence]]] = {}
        for (key_id, role), (count, canary, last) in uses.items():
            deltas.setdefault(key_id, []).append(
                (role, RoleEvidence(sealed=count, canary=canary, last=last))
            )
        keystore = self._keystore()
        try:
            keystore.record_evidence(self._env, deltas)
        except StoreError:
            self._count_again(uses)
            raise
        now = self._monotonic()
        sealed = {key_id for key_id, role in uses if role is not Role.DECRYPT}
        due = [
            k for k in sealed if now - self._recorded.get(k, float("-inf")) >= _USE_RECORD_INTERVAL
        ]
        if due:
            keystore.record_use(self._env, due, at=at)
            for key_id in due:
                self._recorded[key_id] = now

    def _count_again(self, uses: dict[tuple[str, Role], list[int]]) -> None:
        for key, (count, canary, last) in uses.items():
            use = self._uses.setdefault(key, [0, 0, 0])
            use[0] += count
            use[1] += canary
            use[2] = max(use[2], last)

    def lifecycle(self) -> Keystore | None:
        return self._keystore()


def _service_keys(ring: Keyring, at: _dt.datetime, keystore: Keystore) -> ServiceKeys:
    """Both formats side by side; the envelope a request asks for picks its keys by type."""
    # The stored public form is what `keys export` hands out: no need to parse and re-armor.
    published = tuple(
        (record.format, record.public.decode())
        for record in ring.in_state(State.ACTIVE)
        if record.ours
    )
    jwe_signer, jwe_recipient = ring.jwe_signing_key(at=at), ring.jwe_recipient(at=at)
    inventory = tuple(
        KeyStatus(
            id=record.key_id,
            format=record.format.value,
            owner=record.owner,
            roles=tuple(sorted(role.value for role in record.roles)),
            state=record.state.value,
            expires=record.expires,
            created=record.created,
            transitions=tuple((state.value, when) for state, when in record.transitions),
            partner=None if record.partner is None else record.partner.value,
            evidence=tuple(sorted(record.evidence.items())),
        )
        for record in ring.records
        if record.state is not State.DESTROYED
    )
    return ServiceKeys(
        version=str(ring.version),
        signers=(*ring.signing_keys(at=at), *(() if jwe_signer is None else (jwe_signer,))),
        recipients=(*ring.recipients(at=at), *(() if jwe_recipient is None else (jwe_recipient,))),
        decryptors=(*ring.decryption_keys(), *ring.jwe_decryption_keys()),
        verifiers=(*ring.verification_certs(), *ring.jwe_verification_keys()),
        published=published,
        inventory=inventory,
        warnings=tuple(finding.message for finding in findings(ring.records, at)),
        canaries=_canaries(ring, at),
        decryption_owners=_decryption_owners(ring),
        token_checks=tuple(
            (record.key_id, functools.partial(keystore.probe_token_keys, record))
            for record in ring.in_state(State.ACTIVE, State.RETIRING)
            if record.in_hsm
        ),
    )


def _canaries(ring: Keyring, at: _dt.datetime) -> tuple[tuple[str, str], ...]:
    """(role, key id) of the OpenPGP keys on probation usable now, the oldest first per role."""
    canaries: dict[str, str] = {}
    for record in ring.records:
        if (
            record.partner is Partner.CANARY
            and record.state is State.ACTIVE
            and record.format is Format.PGP
            and record.created <= at
            and not record.expired(at)
        ):
            for role in sorted(record.roles & {Role.SIGN, Role.ENCRYPT}):
                canaries.setdefault(role.value, record.key_id)
    return tuple(sorted(canaries.items()))


def _decryption_owners(ring: Keyring) -> dict[str, str]:
    """The key id of each (sub)key fingerprint of our OpenPGP keys that decrypt."""
    return {
        info.fingerprint: record.key_id
        for record in ring.records
        if Role.DECRYPT in record.roles
        and record.format is Format.PGP
        and record.state in (State.ACTIVE, State.RETIRING)
        for info in ring.certificate(record).key_infos()
    }
