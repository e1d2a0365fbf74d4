"""The keystore: every lifecycle operation as read, check, build, commit-on-version.

Each operation reads one environment at version N, checks the rules on those records, and
commits version N+1 with its audit entries in one transaction; a concurrent change makes the
commit fail with ``StoreConflictError`` instead of being lost. The time is always passed in.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Callable, Collection, Mapping, Sequence

from .. import hsm, jose, openpgp
from .._clock import as_unix, now
from .._errors import (
    KeyUnusableError,
    PolicyViolationError,
    UnsupportedError,
    UsageError,
)
from .._policy import GOOGLE_PROFILE, Policy
from ..store import (
    AuditEntry,
    Change,
    KeyRow,
    Store,
    StoreConflictError,
    StoreCorruptError,
    StoreView,
)
from ._audit import genesis_hash, make_entry, verify_chain
from ._errors import AuditTamperedError, SelfTestFailedError, TransitionRefusedError
from ._evidence import Partner, RoleEvidence, add_evidence, parse_evidence
from ._keyring import _NOT_BUILT_AD_HOC, Keyring, SecretCache, SecretKey, key_id_of
from ._model import (
    OURS,
    Environment,
    Format,
    KeyRecord,
    Role,
    State,
    check_owner,
    jwk_role,
    pgp_roles,
)
from ._rules import (
    _LIVE,
    DEFAULT_DRAIN_WINDOW,
    DEFAULT_EXPIRY_WARNING,
    Finding,
    findings,
    plan_transition,
)
from ._selftest import jwk_policy_problems, self_test_jwk, self_test_ours, self_test_partner

__all__ = ["KeyGenerator", "Keystore"]

KeyGenerator = Callable[..., openpgp.SecretKey]


@dataclasses.dataclass(frozen=True)
class _Event:
    action: str
    key_id: str
    from_state: State | None
    to_state: State | None


class Keystore:
    """Lifecycle operations over a ``Store``; ``actor`` names who acts in the audit log.

    Every operation is judged at the ``at`` it is given; the audit log records that reference
    time beside the wall-clock time (``clock``) at which the action was done.
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str,
        policy: Policy = GOOGLE_PROFILE,
        drain_window: _dt.timedelta = DEFAULT_DRAIN_WINDOW,
        expiry_warning: _dt.timedelta = DEFAULT_EXPIRY_WARNING,
        secret_cache: SecretCache | None = None,
        keygen: KeyGenerator = openpgp.generate_key,
        clock: Callable[[], _dt.datetime] = now,
        custody: hsm.TokenCustody | None = None,
    ) -> None:
        if not actor.strip():
            raise UsageError("the audit log needs an actor name")
        self._store = store
        self.actor = actor
        self.policy = policy
        self.drain_window = drain_window
        self.expiry_warning = expiry_warning
        self._secrets = SecretCache() if secret_cache is None else secret_cache
        self._keygen = keygen
        self._clock = clock
        self._custody = custody
        # HSM keys opened in this process, by key id: each holds its token keys' handles.
        self._token_keys: dict[str, openpgp.SecretKey] = {}

    @property
    def custody(self) -> hsm.TokenCustody:
        """The tokens HSM keys live in (configured from the environment unless given)."""
        if self._custody is None:
            self._custody = hsm.TokenCustody.from_environment()
        return self._custody

    def close(self) -> None:
        # Not the custody: the keys handed out keep using its token sessions.
        self._store.close()

    def __repr__(self) -> str:
        return f"Keystore(store={self._store!r}, actor={self.actor!r})"

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self, env: Environment) -> Keyring:
        view = self._store.read(env.value)
        return self._keyring(env, view)

    def _keyring(self, env: Environment, view: StoreView) -> Keyring:
        records = tuple(KeyRecord.from_row(row) for row in view.keys)
        return Keyring(
            env, view.version, records, self._load_secret, self.policy, _token=_NOT_BUILT_AD_HOC
        )

    def _load_secret(self, record: KeyRecord) -> SecretKey:
        if record.custody is not None:
            return self._token_key(record)
        clear = self._store.load_secret(record.env.value, record.key_id)
        if clear is None:
            raise KeyUnusableError(f"key {record.key_id} has no secret material here")
        key = self._secrets.get(clear)
        if key is None:
            key = self._parse_secret(record.format, clear)
            self._secrets.put(clear, key)
        jwk = isinstance(key, jose.JwkKey)
        if key_id_of(key) != record.key_id or jwk != (record.format is Format.JWK):
            raise StoreCorruptError(f"the secret stored for {record.key_id} is another key")
        return key

    def _token_key(self, record: KeyRecord) -> openpgp.SecretKey:
        """An HSM key's OpenPGP key, its private halves in the token (opened once)."""
        assert record.custody is not None
        if record.state is State.DESTROYED:
            raise KeyUnusableError(f"key {record.key_id} was destroyed")
        key = self._token_keys.get(record.key_id)
        if key is None:
            (cert,) = openpgp.read_certificates(record.public, policy=self.policy)
            if cert.fingerprint != record.key_id:
                raise StoreCorruptError(f"the certificate stored for {record.key_id} is not it")
            custody = hsm.Custody.from_text(record.custody)
            key = self._token_keys[record.key_id] = self.custody.open_openpgp_key(cert, custody)
        return key

    def probe_token_keys(self, record: KeyRecord) -> None:
        """Prove an HSM key's token keys usable now (a sign and a decrypt in the token)."""
        if record.custody is None:
            raise UsageError(f"key {record.key_id} is not in an HSM")
        self.custody.probe(hsm.Custody.from_text(record.custody))

    def _parse_secret(self, fmt: Format, clear: bytes) -> SecretKey:
        if fmt is Format.PGP:
            (key,) = openpgp.read_secret_keys(clear, policy=self.policy)
            return key
        jwk = jose.load_jwk(clear, policy=self.policy)
        if not jwk.is_private:
            raise StoreCorruptError("a stored JWK secret has no private part")
        return jwk

    def check(self, env: Environment, *, at: _dt.datetime) -> tuple[Finding, ...]:
        """What needs attention: a role without an active key, expiry soon, a drained key."""
        keyring = self.snapshot(env)
        return findings(
            keyring.records, at, expiry_warning=self.expiry_warning, drain_window=self.drain_window
        )

    def audit_log(self, env: Environment) -> tuple[AuditEntry, ...]:
        return self._store.audit_log(env.value)

    def verify_audit(self, env: Environment) -> str:
        """Check the hash chain and that it replays to the current states; return the head."""
        view = self._store.read(env.value)
        entries = self._store.audit_log(env.value)
        head = verify_chain(env.value, entries, view.audit_seq, view.audit_head)
        last_state: dict[str, str | None] = {}
        for entry in entries:
            if entry.to_state is not None:
                last_state[entry.key_id] = entry.to_state
        for row in view.keys:
            if last_state.get(row.key_id) != row.state:
                raise AuditTamperedError(
                    f"the audit log does not replay to the state of key {row.key_id}"
                )
        return head if entries else genesis_hash(env.value)

    def record_use(self, env: Environment, key_ids: Collection[str], *, at: _dt.datetime) -> None:
        """Note that these keys were just used to seal (feeds the drain window)."""
        self._store.record_use(env.value, key_ids, as_unix(at))

    def record_evidence(
        self, env: Environment, deltas: Mapping[str, Sequence[tuple[Role, RoleEvidence]]]
    ) -> dict[str, dict[str, RoleEvidence]]:
        """Add uses and outcomes (by key id, then role) to the keys' evidence, in one write;
        advisory like ``record_use`` (no version, no audit). Unknown key ids are skipped.
        Returns the evidence of the keys it changed, as now stored."""
        written: dict[str, dict[str, RoleEvidence]] = {}
        if not deltas:
            return written

        def update(key_id: str, evidence: str | None) -> str | None:
            found = deltas.get(key_id)
            if not found:
                return None
            text = add_evidence(evidence, ((role.value, delta) for role, delta in found))
            written[key_id] = parse_evidence(text)
            return text

        self._store.record_evidence(env.value, update)
        return written

    def set_partner(
        self,
        env: Environment,
        reference: str,
        partner: Partner,
        *,
        at: _dt.datetime,
        reason: str,
        expect_from: Partner = Partner.CANARY,
    ) -> KeyRecord | None:
        """Record what the partner's outcomes proved of a key on probation (``verified`` or
        ``stopped``), audited as ``partner-verified`` / ``canary-stopped``. None when the key
        is no longer ``expect_from`` (another worker or instance decided first)."""
        view = self._store.read(env.value)
        key = self._keyring(env, view).record(reference)
        if key.partner is not expect_from:
            return None
        moved = dataclasses.replace(key, partner=partner)
        action = "partner-verified" if partner is Partner.VERIFIED else f"canary-{partner.value}"
        try:
            self._commit(
                view, [moved], [_Event(action, key.key_id, key.state, key.state)], at=at,
                reason=reason,
            )  # fmt: skip
        except StoreConflictError:
            # Another writer moved the keyring on: decide again on what it wrote.
            return self.set_partner(
                env, reference, partner, at=at, reason=reason, expect_from=expect_from
            )
        return moved

    # -- adding keys -------------------------------------------------------------------------

    def generate(
        self,
        env: Environment,
        *,
        at: _dt.datetime,
        user_id: str | None = None,
        bits: int | None = None,
        validity: _dt.timedelta | None = None,
        key_format: Format = Format.PGP,
        use: str | None = None,
        alg: str | None = None,
        reason: str = "",
        expect_version: int | None = None,
        hsm_uri: str | None = None,
    ) -> KeyRecord:
        """Make one of our keys (pending); its secret is sealed in the store.

        An OpenPGP key (``user_id`` required) signs and decrypts; with ``hsm_uri`` (a
        ``pkcs11:`` URI naming a token) it is made in that token instead, and the record keeps
        the certificate and the token keys' URIs (``custody``), no secret. A JWK
        (``key_format=JWK``) does one job, named by ``use``: ``"sig"`` signs, ``"enc"``
        decrypts; ``alg`` pins it to one algorithm (``"RSA1_5"`` for a legacy decryption key).
        Its kid is its RFC 7638 thumbprint, its ``iat``/``exp`` are ``at`` and ``at + validity``.
        """
        if key_format is Format.JWK:
            if hsm_uri is not None:
                raise UnsupportedError(
                    "HSM keys in the store are OpenPGP keys; a token JWK is made with "
                    "pushprov.hsm.token_jwk"
                )
            if user_id is not None:
                raise UsageError("a JWK has no user ID")
            role = jwk_role(OURS, use)
            jwk = jose.generate_jwk(
                bits=bits, validity=validity, at=at, policy=self.policy, use=use, alg=alg
            )
            clear = jwk.to_json(private=True).encode()
            self._secrets.put(clear, jwk)
            return self._add_jwk(
                env, jwk, OURS, role, clear, "generate", at, reason, expect_version
            )
        if use is not None or alg is not None:
            raise UsageError("use and alg go with format jwk")
        if user_id is None:
            raise UsageError("an OpenPGP key needs a user ID")
        if hsm_uri is not None:
            return self._generate_in_token(
                env, hsm_uri, user_id, at, bits, validity, reason, expect_version
            )
        key = self._keygen(user_id, bits=bits, validity=validity, at=at, policy=self.policy)
        clear = key.armor().encode()
        self._secrets.put(clear, key)
        return self._add_pgp(
            env, key.certificate, OURS, clear, "generate", at, reason, expect_version
        )

    def _generate_in_token(
        self,
        env: Environment,
        uri: str,
        user_id: str,
        at: _dt.datetime,
        bits: int | None,
        validity: _dt.timedelta | None,
        reason: str,
        expect_version: int | None,
    ) -> KeyRecord:
        self._read(env, expect_version)  # a stale version is refused before the token is used
        key, custody = self.custody.generate_openpgp_key(
            uri, user_id, at=at, bits=bits, validity=validity, policy=self.policy
        )
        try:
            record = self._add_pgp(
                env, key.certificate, OURS, None, "generate", at, reason, expect_version,
                custody=custody.to_text(),
            )  # fmt: skip
        except BaseException:
            # No record names these token keys: leave no litter in the token.
            self.custody.destroy(custody)
            raise
        self._token_keys[record.key_id] = key
        return record

    def import_key(
        self,
        env: Environment,
        data: bytes,
        *,
        at: _dt.datetime,
        owner: str | None = None,
        passphrase: bytes | None = None,
        use: str | None = None,
        validity: _dt.timedelta | None = None,
        reason: str = "",
        expect_version: int | None = None,
    ) -> KeyRecord:
        """Add one key as pending: a secret key is ours, a certificate a partner's (``google``).

        OpenPGP data (armored or binary) is read as OpenPGP; a JWK (JSON) or PEM key as a JWK:
        with its private part ours, without it a partner's. A JWK does one job: ``use``
        (``"sig"``/``"enc"``) names it, or the JWK's own ``use`` does. A JWK without ``exp``
        (a PEM key always) gets one only from ``validity``, counted from its ``iat`` (or
        ``at`` when it has none); the stored JWK records its role and both times.

        Refused when it breaks the policy (lifetime beyond ``max_key_lifetime``, no expiry,
        too small, expired) or is already known in either environment.
        """
        if _is_jose(data):
            if passphrase is not None:
                raise UsageError("JWK and PEM keys are imported unprotected; no passphrase")
            return self._import_jwk(env, data, at, owner, use, validity, reason, expect_version)
        if use is not None or validity is not None:
            raise UsageError("use and validity go with JWK and PEM keys")
        has_secret = openpgp.contains_secret_key(data)
        owner = check_owner(owner or (OURS if has_secret else "google"))
        if owner == OURS:
            if not has_secret:
                raise UsageError("our own key must be imported with its secret part")
            known = self._secrets.get(data) if passphrase is None else None
            keys = (
                [known]
                if isinstance(known, openpgp.SecretKey)
                else openpgp.read_secret_keys(data, passphrase=passphrase, policy=self.policy)
            )
            if len(keys) != 1:
                raise UsageError("import one key at a time")
            clear = keys[0].armor().encode()
            self._secrets.put(clear, keys[0])
            return self._add_pgp(
                env, keys[0].certificate, owner, clear, "import", at, reason, expect_version
            )
        if has_secret:
            raise UsageError("a partner's key is imported as a certificate, never with a secret")
        certs = openpgp.read_certificates(data, policy=self.policy)
        if len(certs) != 1:
            raise UsageError("import one key at a time")
        return self._add_pgp(env, certs[0], owner, None, "import", at, reason, expect_version)

    def _import_jwk(
        self,
        env: Environment,
        data: bytes,
        at: _dt.datetime,
        owner: str | None,
        use: str | None,
        validity: _dt.timedelta | None,
        reason: str,
        expect_version: int | None,
    ) -> KeyRecord:
        key = jose.load_jwk(data, policy=self.policy)
        owner = check_owner(owner or (OURS if key.is_private else "google"))
        if owner == OURS and not key.is_private:
            raise UsageError("our own key must be imported with its private part")
        if owner != OURS and key.is_private:
            raise UsageError("a partner's key is imported public, never with its private part")
        if use is not None and key.use is not None and use != key.use:
            raise UsageError(f'the JWK says its use is "{key.use}"')
        use = use or key.use
        role = jwk_role(owner, use)
        created = key.created or at.astimezone(_dt.UTC).replace(microsecond=0)
        if key.expires is not None:
            if validity is not None:
                raise UsageError("the JWK records its own expiry (exp); give no validity")
            expires = key.expires
        elif validity is None:
            raise PolicyViolationError(
                f"key {key.kid}: it records no expiry (exp); give a validity to record one"
            )
        elif not _dt.timedelta(0) < validity <= self.policy.max_key_lifetime:
            raise PolicyViolationError("validity must be positive and within the key lifetime")
        else:
            try:
                expires = created + validity
            except OverflowError:
                raise UsageError("the key would expire after the year 9999") from None
        # The stored JWK says what the record says: its role, when it was made, when it ends.
        document = json.loads(key.to_json(private=key.is_private))
        document.update(use=use, iat=as_unix(created), exp=as_unix(expires))
        stored = jose.load_jwk(json.dumps(document), policy=self.policy)
        clear = stored.to_json(private=True).encode() if stored.is_private else None
        if clear is not None:
            self._secrets.put(clear, stored)
        return self._add_jwk(env, stored, owner, role, clear, "import", at, reason, expect_version)

    def _add_pgp(
        self,
        env: Environment,
        cert: openpgp.Certificate,
        owner: str,
        clear_secret: bytes | None,
        action: str,
        at: _dt.datetime,
        reason: str,
        expect_version: int | None,
        *,
        custody: str | None = None,
    ) -> KeyRecord:
        problems = cert.policy_problems(self.policy, at)
        if problems:
            raise PolicyViolationError(f"key {cert.fingerprint}: " + "; ".join(problems))
        record = KeyRecord(
            key_id=cert.fingerprint,
            env=env,
            format=Format.PGP,
            owner=owner,
            roles=pgp_roles(owner),
            label=cert.user_ids[0] if cert.user_ids else "",
            created=cert.created,
            expires=cert.expires,
            state=State.PENDING,
            transitions=((State.PENDING, at),),
            public=cert.armor().encode(),
            has_secret=clear_secret is not None,
            custody=custody,
        )
        return self._add(env, record, clear_secret, action, at, reason, expect_version)

    def _add_jwk(
        self,
        env: Environment,
        key: jose.JwkKey,
        owner: str,
        role: Role,
        clear_secret: bytes | None,
        action: str,
        at: _dt.datetime,
        reason: str,
        expect_version: int | None,
    ) -> KeyRecord:
        problems = jwk_policy_problems(key, role, self.policy, at)
        if problems:
            raise PolicyViolationError(f"key {key.kid}: " + "; ".join(problems))
        assert key.created is not None  # no problems: iat and exp are recorded
        record = KeyRecord(
            key_id=key.kid,
            env=env,
            format=Format.JWK,
            owner=owner,
            roles=frozenset({role}),  # jwk_role gave the one role its owner allows
            label="",
            created=key.created,
            expires=key.expires,
            state=State.PENDING,
            transitions=((State.PENDING, at),),
            public=key.public().to_json().encode(),
            has_secret=clear_secret is not None,
        )
        return self._add(env, record, clear_secret, action, at, reason, expect_version)

    def _add(
        self,
        env: Environment,
        record: KeyRecord,
        clear_secret: bytes | None,
        action: str,
        at: _dt.datetime,
        reason: str,
        expect_version: int | None,
    ) -> KeyRecord:
        other = Environment.SANDBOX if env is Environment.PRODUCTION else Environment.PRODUCTION
        known = _same_key(record, self._store.read(other.value).keys)
        if known is not None:
            raise TransitionRefusedError(
                f"key {record.key_id} is in {other.value}{known}: environments never share keys"
            )
        view = self._read(env, expect_version)
        known = _same_key(record, view.keys)
        if known is not None:
            raise TransitionRefusedError(f"key {record.key_id} is already in {env.value}{known}")
        secrets = () if clear_secret is None else ((record.key_id, clear_secret),)
        self._commit(
            view,
            [record],
            [_Event(action, record.key_id, None, State.PENDING)],
            at=at,
            reason=reason,
            secrets=secrets,
        )
        return record

    def export(
        self,
        env: Environment,
        reference: str,
        *,
        at: _dt.datetime,
        secret_passphrase: bytes | None = None,
        reason: str = "",
    ) -> bytes:
        """The armored certificate (a JWK: its public JSON); with ``secret_passphrase``, the
        passphrase-protected OpenPGP secret key (audited as ``export-secret``; an unprotected
        export is never offered, so a JWK's private part does not leave the store)."""
        view = self._store.read(env.value)
        keyring = self._keyring(env, view)
        record = keyring.record(reference)
        if secret_passphrase is None:
            return record.public
        if not secret_passphrase:
            raise UsageError("a secret export needs a non-empty passphrase")
        if record.format is Format.JWK:
            raise UnsupportedError("a JWK has no passphrase-protected form: it stays in the store")
        if record.in_hsm:
            raise UnsupportedError(
                f"key {record.key_id} lives in an HSM: its private keys never leave the token"
            )
        armored = keyring.secret_key(record).armor(secret_passphrase).encode()
        self._commit(
            view,
            [],
            [_Event("export-secret", record.key_id, record.state, record.state)],
            at=at,
            reason=reason,
        )
        return armored

    # -- transitions -------------------------------------------------------------------------

    def promote(
        self,
        env: Environment,
        reference: str,
        *,
        at: _dt.datetime,
        replacing: Sequence[str] = (),
        test_message: bytes | None = None,
        reason: str = "",
        expect_version: int | None = None,
    ) -> KeyRecord:
        """pending -> active after the self-test; keys in ``replacing`` go to retiring at once."""
        return self._transition(
            env, reference, State.ACTIVE, "promote", at=at, replacing=replacing,
            test_message=test_message, reason=reason, expect_version=expect_version,
            expect_from=State.PENDING,
        )  # fmt: skip

    def rollback(
        self,
        env: Environment,
        reference: str,
        *,
        at: _dt.datetime,
        replacing: Sequence[str] = (),
        reason: str = "",
        expect_version: int | None = None,
    ) -> KeyRecord:
        """retiring -> active: take back a rotation (no self-test: the key was active before)."""
        return self._transition(
            env, reference, State.ACTIVE, "rollback", at=at, replacing=replacing,
            reason=reason, expect_version=expect_version, expect_from=State.RETIRING,
        )  # fmt: skip

    def retire(
        self,
        env: Environment,
        reference: str,
        *,
        at: _dt.datetime,
        final: bool = False,
        force: bool = False,
        reason: str = "",
        expect_version: int | None = None,
    ) -> KeyRecord:
        """active -> retiring; with ``final``, retiring -> retired once the drain window passed
        (``force`` with a ``reason`` overrides the window)."""
        return self._transition(
            env, reference, State.RETIRED if final else State.RETIRING,
            "retire-final" if final else "retire", at=at, force=force, reason=reason,
            expect_version=expect_version,
        )  # fmt: skip

    def destroy(
        self,
        env: Environment,
        reference: str,
        *,
        at: _dt.datetime,
        reason: str,
        expect_version: int | None = None,
    ) -> KeyRecord:
        """retired (or never-used pending) -> destroyed: the secret is erased for good."""
        if not reason.strip():
            raise UsageError("destroying a key needs a reason")
        return self._transition(
            env, reference, State.DESTROYED, "destroy", at=at, reason=reason,
            expect_version=expect_version,
        )  # fmt: skip

    def _transition(
        self,
        env: Environment,
        reference: str,
        to: State,
        action: str,
        *,
        at: _dt.datetime,
        replacing: Sequence[str] = (),
        test_message: bytes | None = None,
        force: bool = False,
        reason: str = "",
        expect_version: int | None = None,
        expect_from: State | None = None,
    ) -> KeyRecord:
        view = self._read(env, expect_version)
        keyring = self._keyring(env, view)
        key = keyring.record(reference)
        if expect_from is not None and key.state is not expect_from:
            raise TransitionRefusedError(
                f"{action} moves a {expect_from.value} key; {key.key_id} is {key.state.value}"
            )
        old = tuple(keyring.record(ref) for ref in replacing)
        moved = plan_transition(
            keyring.records, key, to, at=at, replacing=old, force=force, reason=reason,
            drain_window=self.drain_window,
        )  # fmt: skip
        if to is State.ACTIVE and action == "promote":
            self._self_test(keyring, key, at, test_message)
            if _on_probation(moved[0]):
                # Proven locally; now the partner must show it works alone (``Partner``).
                moved = (dataclasses.replace(moved[0], partner=Partner.CANARY), *moved[1:])
        events = [_Event(action, key.key_id, key.state, to)]
        events += [_Event("retire", r.key_id, r.state, State.RETIRING) for r in old]
        if to is State.DESTROYED and key.custody is not None:
            # First the token's objects, then the record: a failure here leaves a retired (or
            # never used) key retired, never a "destroyed" one whose keys still exist.
            self.custody.destroy(hsm.Custody.from_text(key.custody))
            self._token_keys.pop(key.key_id, None)
            events.append(_Event("destroy-token-keys", key.key_id, to, to))
        erase = frozenset({key.key_id}) if to is State.DESTROYED and key.has_secret else frozenset()
        self._commit(view, list(moved), events, at=at, reason=reason, erase=erase)
        if erase:
            self._secrets.forget(key.key_id)
        return moved[0]

    def _self_test(
        self, keyring: Keyring, key: KeyRecord, at: _dt.datetime, test_message: bytes | None
    ) -> None:
        if key.format is Format.JWK:
            self._self_test_jwk(keyring, key, at, test_message)
            return
        if key.ours:
            partners = [
                keyring.certificate(r)
                for r in keyring.records
                if Role.VERIFY in r.roles and r.format is Format.PGP and r.state in _LIVE
            ]
            self_test_ours(
                keyring.secret_key(key), at=at, policy=self.policy, test_message=test_message,
                partner_certs=partners,
            )  # fmt: skip
            return
        if test_message is not None:
            raise UsageError("a test message proves one of our keys, not a partner's")
        signers = [
            r
            for state in (State.ACTIVE, State.PENDING)
            for r in keyring.in_state(state)
            if r.ours and r.usable_secret and r.format is Format.PGP and not r.expired(at)
        ]
        if not signers:
            raise SelfTestFailedError(
                "sealing a probe to a partner key needs one of our keys (active or pending)"
            )
        self_test_partner(
            keyring.certificate(key), signer=keyring.secret_key(signers[0]), at=at,
            policy=self.policy,
        )  # fmt: skip

    def _self_test_jwk(
        self, keyring: Keyring, key: KeyRecord, at: _dt.datetime, test_message: bytes | None
    ) -> None:
        (role,) = key.roles
        if test_message is not None and role not in (Role.DECRYPT, Role.VERIFY):
            raise UsageError("a test message proves a JWK that decrypts or verifies")

        def live_jwks(wanted: Role) -> list[KeyRecord]:
            return [
                r
                for r in keyring.records
                if r.format is Format.JWK and wanted in r.roles and r.state in _LIVE
            ]

        partner_keys: list[jose.JwkKey] = []
        our_keys: list[jose.JwkKey] = []
        if test_message is not None and role is Role.DECRYPT:
            partner_keys = [keyring.public_jwk(r) for r in live_jwks(Role.VERIFY)]
        if test_message is not None and role is Role.VERIFY:
            our_keys = [keyring.secret_jwk(r) for r in live_jwks(Role.DECRYPT) if r.has_secret]
        self_test_jwk(
            keyring.public_jwk(key), role, at=at, policy=self.policy,
            secret=keyring.secret_jwk(key) if key.ours else None, test_message=test_message,
            partner_keys=partner_keys, our_keys=our_keys,
        )  # fmt: skip

    # -- committing --------------------------------------------------------------------------

    def _read(self, env: Environment, expect_version: int | None) -> StoreView:
        view = self._store.read(env.value)
        if expect_version is not None and view.version != expect_version:
            raise StoreConflictError(
                f"{env.value} keyring is at version {view.version}, not {expect_version}"
            )
        return view

    def _commit(
        self,
        view: StoreView,
        records: list[KeyRecord],
        events: list[_Event],
        *,
        at: _dt.datetime,
        reason: str,
        secrets: tuple[tuple[str, bytes], ...] = (),
        erase: frozenset[str] = frozenset(),
    ) -> int:
        version = view.version + 1
        prev = view.audit_head or genesis_hash(view.env)
        done_at = as_unix(self._clock())
        entries = []
        for seq, event in enumerate(events, start=view.audit_seq + 1):
            entry = make_entry(
                env=view.env,
                seq=seq,
                at=done_at,
                ref_at=as_unix(at),
                actor=self.actor,
                action=event.action,
                key_id=event.key_id,
                from_state=None if event.from_state is None else event.from_state.value,
                to_state=None if event.to_state is None else event.to_state.value,
                reason=reason,
                version=version,
                prev_hash=prev,
            )
            entries.append(entry)
            prev = entry.hash
        return self._store.commit(
            Change(
                env=view.env,
                base_version=view.version,
                upsert=tuple(r.to_row() for r in records),
                secrets=secrets,
                erase=erase,
                audit=tuple(entries),
            )
        )


def _on_probation(record: KeyRecord) -> bool:
    """An OpenPGP key we seal outgoing GOPCs with (ours signs, a partner's is encrypted to):
    several can be active in a role, so one can be tried alone. A JWK is alone already."""
    return record.format is Format.PGP and bool(record.roles & {Role.SIGN, Role.ENCRYPT})


def _is_jose(data: bytes) -> bool:
    """A JWK (JSON) or a PEM key, as opposed to OpenPGP (binary or ASCII armor)."""
    head = data.lstrip()
    return head.startswith(b"{") or (
        head.startswith(b"-----BEGIN ") and not head.startswith(b"-----BEGIN PGP ")
    )


def _same_key(record: KeyRecord, rows: Sequence[KeyRow]) -> str | None:
    """None when no row holds this key; else "" (same id) or " as <id>" (a JWK's kid is only
    a name: the same RSA modulus under another kid is the same key)."""
    modulus = _modulus(record.public) if record.format is Format.JWK else None
    for row in rows:
        if row.key_id == record.key_id:
            return ""
        if (
            modulus is not None
            and row.format == Format.JWK.value
            and _modulus(row.public) == modulus
        ):
            return f" as {row.key_id}"
    return None


def _modulus(public_jwk: bytes) -> str:
    value: str = json.loads(public_jwk)["n"]
    return value
