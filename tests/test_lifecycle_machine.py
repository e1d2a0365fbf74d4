"""Random lifecycles: generate/import/promote/retire/rollback/destroy, real crashes and reopens,
interleaved with sealing (outbound, as the service does) and Google's messages (inbound).

Invariants, checked after every step against a model kept independently of the code:
* the store's states are the model's, and every record's history walks only allowed edges;
* every outbound message is signed by exactly the active keys of ours and encrypted to exactly
  the active partner keys;
* a message Google sealed to our keys opens while one of its recipients and one of its signers
  is active or retiring, and is refused otherwise: nothing verifies under a retired or
  destroyed key.

"generate" takes keys from the session's pool, so a run costs no RSA key generation; "crash"
runs one change in a forked child and SIGKILLs it after a random number of SQLite statements.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pushprov import (
    GOOGLE_PROFILE,
    DecryptionFailedError,
    PushprovError,
    SignatureInvalidError,
    openpgp,
)
from pushprov.keys import (
    ALLOWED_EDGES,
    DrainWindowError,
    Keystore,
    SelfTestFailedError,
    State,
    TransitionRefusedError,
)
from pushprov.openpgp._packets import Tag, read_packets
from pushprov.store import SqliteStore

from .conftest import T0
from .test_keystore_support import DAY, PASSPHRASE, PROD, key_pool, shared_cache
from .test_lifecycle_crash import run_child

DRAIN = 7 * DAY
_NEXT: dict[State, tuple[str, ...]] = {
    State.PENDING: ("promote", "promote", "destroy"),
    State.ACTIVE: ("retire",),
    State.RETIRING: ("finish", "rollback"),
    State.RETIRED: ("destroy",),
    State.DESTROYED: (),
}
HORIZON = T0 + 300 * DAY  # stay inside the pool keys' one-year validity


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="pushprov-machine-"))
        self.dir.chmod(0o700)
        pool = key_pool()
        self.secrets = {k.fingerprint: k for k in pool.ours + pool.partners}
        self.unused_ours = list(pool.ours)
        self.unused_partners = list(pool.partners)
        self.next_key: openpgp.SecretKey | None = None
        SqliteStore.open(self.db, passphrase=PASSPHRASE, create=True, kdf_log2n=10).close()
        self.ks = self._open()
        self.at = T0 + dt.timedelta(hours=1)
        self.state: dict[str, State] = {}
        self.ours: set[str] = set()
        self.left_active: dict[str, dt.datetime] = {}
        self.last_used: dict[str, dt.datetime] = {}
        self.inbound: list[tuple[bytes, frozenset[str], frozenset[str]]] = []

    @property
    def db(self) -> Path:
        return self.dir / "keystore.db"

    def _open(self) -> Keystore:
        def keygen(*_args: object, **_kwargs: object) -> openpgp.SecretKey:
            assert self.next_key is not None
            return self.next_key

        store = SqliteStore.open(self.db, passphrase=PASSPHRASE)
        return Keystore(store, actor="machine", secret_cache=shared_cache(), keygen=keygen)

    def teardown(self) -> None:
        self.ks.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- model -------------------------------------------------------------------------------

    def keys_in(self, *states: State, ours: bool) -> frozenset[str]:
        return frozenset(
            k for k, s in self.state.items() if s in states and (k in self.ours) == ours
        )

    def outcome(self, key: str, op: str, force: bool = False) -> State | type[PushprovError]:
        """What ``op`` on ``key`` must do now: the new state, or the error it must raise."""
        current = self.state[key]
        if op == "promote":
            if current is not State.PENDING:
                return TransitionRefusedError
            signer = self.keys_in(State.ACTIVE, State.PENDING, ours=True)
            return State.ACTIVE if key in self.ours or signer else SelfTestFailedError
        if op == "retire":
            return State.RETIRING if current is State.ACTIVE else TransitionRefusedError
        if op == "rollback":
            return State.ACTIVE if current is State.RETIRING else TransitionRefusedError
        if op == "finish":
            if current is not State.RETIRING:
                return TransitionRefusedError
            since = max(self.left_active[key], self.last_used.get(key, self.left_active[key]))
            return State.RETIRED if force or self.at - since >= DRAIN else DrainWindowError
        assert op == "destroy"
        if current in (State.RETIRED, State.PENDING):
            return State.DESTROYED
        return TransitionRefusedError

    def call(self, ks: Keystore, key: str, op: str, force: bool = False) -> object:
        if op == "promote":
            return ks.promote(PROD, key, at=self.at)
        if op == "retire":
            return ks.retire(PROD, key, at=self.at)
        if op == "rollback":
            return ks.rollback(PROD, key, at=self.at)
        if op == "finish":
            return ks.retire(PROD, key, at=self.at, final=True, force=force, reason="machine")
        return ks.destroy(PROD, key, at=self.at, reason="machine")

    def apply(self, key: str, new: State) -> None:
        if new is State.RETIRING:
            self.left_active[key] = self.at
        self.state[key] = new

    def pick(self, index: int) -> str:
        keys = sorted(self.state)
        return keys[index % len(keys)]

    # -- rules: the lifecycle ----------------------------------------------------------------

    @initialize(live=st.sampled_from([True, True, True, False]))
    def bootstrap(self, live: bool) -> None:
        """Start empty, or (mostly) as a service runs: one key of ours and one of Google's."""
        if not live:
            return
        self.generate()
        self.import_partner()
        keys = sorted(self.state)
        for key in sorted(keys, key=lambda k: k not in self.ours):  # ours signs the probe
            self.transition(keys.index(key), "promote", False)
        assert self.keys_in(State.ACTIVE, ours=True) and self.keys_in(State.ACTIVE, ours=False)
        self.google_sends()

    @precondition(lambda self: bool(self.unused_ours))
    @rule()
    def generate(self) -> None:
        self.next_key = self.unused_ours.pop(0)
        record = self.ks.generate(PROD, user_id="ours", at=self.at)
        assert record.key_id == self.next_key.fingerprint and record.state is State.PENDING
        self.state[record.key_id] = State.PENDING
        self.ours.add(record.key_id)

    @precondition(lambda self: bool(self.unused_partners))
    @rule()
    def import_partner(self) -> None:
        cert = self.unused_partners.pop(0).certificate
        record = self.ks.import_key(PROD, cert.armor().encode(), at=self.at)
        assert record.owner == "google" and not record.has_secret
        self.state[record.key_id] = State.PENDING

    @precondition(lambda self: bool(self.state))
    @rule(
        index=st.integers(0, 63),
        op=st.sampled_from(["promote", "retire", "rollback", "finish", "destroy"]),
        force=st.booleans(),
        aim=st.integers(0, 3),
    )
    def transition(self, index: int, op: str, force: bool, aim: int = 0) -> None:
        key = self.pick(index)
        if aim:  # mostly walk an edge that exists, so lifecycles get deep
            edges = _NEXT[self.state[key]]
            op = edges[aim % len(edges)] if edges else op
        expected = self.outcome(key, op, force)
        event(f"{op}: {getattr(expected, 'value', getattr(expected, 'code', ''))}")
        version = self.ks.snapshot(PROD).version
        if isinstance(expected, State):
            record = self.call(self.ks, key, op, force)
            assert getattr(record, "state", None) is expected
            self.apply(key, expected)
        else:
            try:
                self.call(self.ks, key, op, force)
            except expected:
                assert self.ks.snapshot(PROD).version == version  # a refusal changes nothing
            else:
                raise AssertionError(f"{op} of a {self.state[key]} key should have failed")

    @precondition(lambda self: self.at < HORIZON)
    @rule(hours=st.integers(1, 24 * 10))
    def advance(self, hours: int) -> None:
        self.at = min(self.at + dt.timedelta(hours=hours), HORIZON)

    @rule()
    def reopen(self) -> None:
        self.ks.close()
        self.ks = self._open()

    @precondition(lambda self: bool(self.state))
    @rule(
        index=st.integers(0, 63),
        op=st.sampled_from(["promote", "retire", "rollback", "finish", "destroy"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def crash(self, index: int, op: str, seed: int) -> None:
        """Run one change in a child killed after a random number of statements."""
        key = self.pick(index)
        expected = self.outcome(key, op, force=True)
        if not isinstance(expected, State):
            return
        kill_after = random.Random(seed).randint(1, 24)
        before = self.state[key]
        run_child(self.dir, lambda ks: self.call(ks, key, op, force=True), kill_after, None)
        now = self.ks.snapshot(PROD).record(key).state
        assert now in (before, expected), (before, now, expected)
        event(f"crash during {op}: {'new' if now is expected else 'old'} state")
        if now is expected:
            self.apply(key, expected)

    # -- rules: traffic ----------------------------------------------------------------------

    @rule()
    def seal_outbound(self) -> None:
        ring = self.ks.snapshot(PROD)
        signers, recipients = ring.signing_keys(at=self.at), ring.recipients(at=self.at)
        expected_signers = self.keys_in(State.ACTIVE, ours=True)
        expected_recipients = self.keys_in(State.ACTIVE, ours=False)
        assert {k.fingerprint for k in signers} == expected_signers
        assert {c.fingerprint for c in recipients} == expected_recipients
        if not signers or not recipients:
            return
        sealed = openpgp.seal(b"gopc", sign_with=signers, encrypt_to=recipients, at=self.at)
        self.ks.record_use(PROD, [k.fingerprint for k in signers], at=self.at)
        for key_id in expected_signers:
            self.last_used[key_id] = self.at
        pkesk_ids = {body[1:9] for tag, body in read_packets(sealed) if tag == Tag.PKESK}
        assert pkesk_ids == {c.encryption_key(GOOGLE_PROFILE, self.at).key_id for c in recipients}
        for partner in expected_recipients:  # each of Google's active keys opens it alone
            opened = openpgp.open_message(
                sealed,
                decrypt_with=[self.secrets[partner]],
                verify_with=[self.secrets[k].certificate for k in self.ours],
                at=self.at,
            )
            assert set(opened.signers) <= expected_signers and opened.signers

    @rule()
    def google_sends(self) -> None:
        to = self.keys_in(State.ACTIVE, ours=True)
        signed_by = self.keys_in(State.ACTIVE, ours=False)
        if not to or not signed_by:
            return
        message = openpgp.seal(
            b"from google",
            sign_with=[self.secrets[k] for k in sorted(signed_by)],
            encrypt_to=[self.secrets[k].certificate for k in sorted(to)],
            at=self.at,
        )
        self.inbound.append((message, to, signed_by))
        del self.inbound[:-6]  # keep the checks quick: the latest few messages

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def inbound_opens_exactly_while_usable(self) -> None:
        ring = self.ks.snapshot(PROD)
        usable_ours = self.keys_in(State.ACTIVE, State.RETIRING, ours=True)
        usable_theirs = self.keys_in(State.ACTIVE, State.RETIRING, ours=False)
        decrypt_with, verify_with = ring.decryption_keys(), ring.verification_certs()
        assert {k.fingerprint for k in decrypt_with} == usable_ours
        assert {c.fingerprint for c in verify_with} == usable_theirs
        for message, to, signed_by in self.inbound:
            try:
                opened = openpgp.open_message(
                    message, decrypt_with=decrypt_with, verify_with=verify_with, at=self.at
                )
            except DecryptionFailedError:
                event("inbound: refused, no usable key of ours")
                assert not to & usable_ours
            except SignatureInvalidError:
                event("inbound: refused, no usable signer")
                assert to & usable_ours and not signed_by & usable_theirs
            else:
                event("inbound: opened")
                assert to & usable_ours and signed_by & usable_theirs
                assert set(opened.signers) <= signed_by & usable_theirs

    @invariant()
    def store_matches_model(self) -> None:
        ring = self.ks.snapshot(PROD)
        assert {r.key_id: r.state for r in ring.records} == self.state
        for record in ring.records:
            states = [s for s, _ in record.transitions]
            assert states[0] is State.PENDING
            assert all(edge in ALLOWED_EDGES for edge in itertools.pairwise(states))
            assert record.has_secret == (
                record.key_id in self.ours and record.state is not State.DESTROYED
            )


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
