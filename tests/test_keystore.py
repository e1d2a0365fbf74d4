"""Keystore: records, allowed edges, self-tests, drain window, expiry, audit chain, conflicts,
secrets at rest and file permissions. Store-backed tests run over every store implementation."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import pushprov
from pushprov import (
    GOOGLE_PROFILE,
    KeyUnusableError,
    PassphraseError,
    Policy,
    PolicyViolationError,
    PushprovError,
    UsageError,
    keys,
    openpgp,
    store,
)
from pushprov.keys import (
    ALLOWED_EDGES,
    OURS,
    AuditTamperedError,
    DrainWindowError,
    Format,
    KeyNotFoundError,
    KeyRecord,
    Partner,
    PartnerUnverifiedError,
    Role,
    RoleEvidence,
    SelfTestFailedError,
    State,
    TransitionRefusedError,
)
from pushprov.keys._rules import findings, plan_transition
from pushprov.store import (
    Change,
    SqliteServiceState,
    SqliteStore,
    StoreConflictError,
    StoreCorruptError,
    StoredResponse,
    StoreInsecureError,
    default_store_path,
)
from pushprov.store._schema import SERVICE_TABLES, SQLITE_SERVICE, create_statements

from .conftest import T0
from .test_keystore_support import (
    DAY,
    PASSPHRASE,
    PROD,
    SANDBOX,
    STORE_FACTORIES,
    StoreFactory,
    key_pool,
    keystore,
    sqlite_factory,
    store_files,
)


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    return STORE_FACTORIES[request.param](request)


# ---------------------------------------------------------------------------------------------
# pure rules over synthetic records


def _record(
    key_id: str,
    state: State,
    *,
    fmt: Format = Format.PGP,
    roles: frozenset[Role] = frozenset({Role.SIGN, Role.DECRYPT}),
    since: dt.datetime = T0,
    expires: dt.datetime | None = T0 + 365 * DAY,
) -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        env=PROD,
        format=fmt,
        owner=OURS,
        roles=roles,
        label="",
        created=T0,
        expires=expires,
        state=state,
        transitions=((State.PENDING, since), (state, since)),
    )


@pytest.mark.parametrize("source", list(State))
@pytest.mark.parametrize("target", list(State))
def test_only_the_allowed_edges_pass(source: State, target: State) -> None:
    record = _record("K1", source)
    at = T0 + 30 * DAY  # past any drain window
    if (source, target) in ALLOWED_EDGES:
        (moved,) = plan_transition([record], record, target, at=at)
        assert moved.state is target
        assert moved.transitions[-1] == (target, at)
    else:
        with pytest.raises(TransitionRefusedError) as info:
            plan_transition([record], record, target, at=at)
        assert info.value.code == "transition_refused"


def test_the_edge_table_is_the_documented_one() -> None:
    assert {(a.value, b.value) for a, b in ALLOWED_EDGES} == {
        ("pending", "active"),
        ("pending", "destroyed"),
        ("active", "retiring"),
        ("retiring", "active"),
        ("retiring", "retired"),
        ("retired", "destroyed"),
    }


def test_jwk_allows_one_active_per_role_and_switches_explicitly() -> None:
    sign = frozenset({Role.SIGN})
    old = _record("J1", State.ACTIVE, fmt=Format.JWK, roles=sign)
    new = _record("J2", State.PENDING, fmt=Format.JWK, roles=sign)
    other_role = _record("J3", State.ACTIVE, fmt=Format.JWK, roles=frozenset({Role.DECRYPT}))
    records = [old, new, other_role]
    at = T0 + DAY
    with pytest.raises(TransitionRefusedError, match="one active key per role"):
        plan_transition(records, new, State.ACTIVE, at=at)
    moved = plan_transition(records, new, State.ACTIVE, at=at, replacing=[old])
    assert [(r.key_id, r.state) for r in moved] == [("J2", State.ACTIVE), ("J1", State.RETIRING)]
    assert moved[0].entered(State.ACTIVE) == moved[1].entered(State.RETIRING) == at


def test_pgp_allows_several_actives_per_role() -> None:
    records = [_record("P1", State.ACTIVE), _record("P2", State.PENDING)]
    (moved,) = plan_transition(records, records[1], State.ACTIVE, at=T0 + DAY)
    assert moved.state is State.ACTIVE


def test_replacing_needs_an_active_key_in_the_same_role() -> None:
    partner = _record("G1", State.ACTIVE, roles=frozenset({Role.ENCRYPT, Role.VERIFY}))
    new = _record("P2", State.PENDING)
    with pytest.raises(TransitionRefusedError, match="cannot be replaced"):
        plan_transition([partner, new], new, State.ACTIVE, at=T0 + DAY, replacing=[partner])


def test_time_may_not_go_backwards() -> None:
    record = _record("K1", State.ACTIVE, since=T0 + 5 * DAY)
    with pytest.raises(TransitionRefusedError, match="backwards"):
        plan_transition([record], record, State.RETIRING, at=T0 + 4 * DAY)


def test_an_expired_key_is_never_promoted() -> None:
    record = _record("K1", State.PENDING, expires=T0 + DAY)
    with pytest.raises(TransitionRefusedError, match="expired"):
        plan_transition([record], record, State.ACTIVE, at=T0 + 2 * DAY)


def test_drain_window_counts_from_leaving_active_or_last_use() -> None:
    retiring = _record("K1", State.RETIRING, since=T0)
    with pytest.raises(DrainWindowError) as info:
        plan_transition([retiring], retiring, State.RETIRED, at=T0 + 6 * DAY)
    assert info.value.code == "still_draining"
    (done,) = plan_transition([retiring], retiring, State.RETIRED, at=T0 + 7 * DAY)
    assert done.state is State.RETIRED
    used = dataclasses.replace(retiring, last_used=T0 + 3 * DAY)
    with pytest.raises(DrainWindowError):
        plan_transition([used], used, State.RETIRED, at=T0 + 9 * DAY)
    with pytest.raises(UsageError, match="reason"):
        plan_transition([used], used, State.RETIRED, at=T0 + 9 * DAY, force=True)
    (forced,) = plan_transition(
        [used], used, State.RETIRED, at=T0 + 9 * DAY, force=True, reason="compromised"
    )
    assert forced.state is State.RETIRED
    short = plan_transition(
        [retiring], retiring, State.RETIRED, at=T0 + DAY, drain_window=dt.timedelta(hours=12)
    )
    assert short[0].state is State.RETIRED


def test_findings_name_what_needs_attention() -> None:
    at = T0 + 340 * DAY  # 25 days before the one-year expiry
    active = _record("A", State.ACTIVE)
    partner = _record("G", State.ACTIVE, roles=frozenset({Role.ENCRYPT, Role.VERIFY}))
    drained = _record("R", State.RETIRING, since=T0)
    found = findings([active, partner, drained], at)
    codes = sorted((f.code, f.key_id) for f in found)
    assert ("expiring", "A") in codes and ("expiring", "G") in codes
    assert ("drained", "R") in codes
    assert not any(code == "no_active_key" for code, _ in codes)
    assert not findings([active, partner], T0 + DAY)
    later = findings([active], T0 + 400 * DAY)
    assert {f.code for f in later} == {"expired", "no_active_key"}
    assert {f.message for f in later if f.code == "no_active_key"} == {
        f"no usable active key for role {role}" for role in ("sign", "decrypt", "encrypt", "verify")
    }


# ---------------------------------------------------------------------------------------------
# keystore on a store


def test_generate_promote_and_snapshot_roles(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    pool = key_pool()
    ours = ks.generate(PROD, user_id="Issuer <ops@issuer.example>", at=T0)
    google = ks.import_key(PROD, pool.partners[0].certificate.armor().encode(), at=T0)
    assert (ours.owner, ours.state, ours.has_secret) == (OURS, State.PENDING, True)
    assert ours.roles == frozenset({Role.SIGN, Role.DECRYPT})
    assert (google.owner, google.roles, google.has_secret) == (
        "google",
        frozenset({Role.ENCRYPT, Role.VERIFY}),
        False,
    )
    ring = ks.snapshot(PROD)
    assert ring.version == 2 and ring.signing_keys(at=T0) == () and ring.recipients(at=T0) == ()
    ks.promote(PROD, ours.key_id, at=T0 + DAY)
    ks.promote(PROD, google.key_id[-16:], at=T0 + DAY)  # a key ID suffix is enough
    ring = ks.snapshot(PROD)
    assert ring.version == 4
    assert [k.fingerprint for k in ring.signing_keys(at=T0 + DAY)] == [ours.key_id]
    assert [c.fingerprint for c in ring.recipients(at=T0 + DAY)] == [google.key_id]
    assert [k.fingerprint for k in ring.decryption_keys()] == [ours.key_id]
    assert [c.fingerprint for c in ring.verification_certs()] == [google.key_id]
    assert ring.record(ours.key_id).entered(State.ACTIVE) == T0 + DAY
    assert ks.snapshot(SANDBOX).records == ()


def test_snapshot_is_frozen_and_survives_later_commits(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    old = ks.snapshot(PROD)
    ks.promote(PROD, record.key_id, at=T0)
    assert old.version == 1 and old.record(record.key_id).state is State.PENDING
    assert ks.snapshot(PROD).record(record.key_id).state is State.ACTIVE
    with pytest.raises(AttributeError):
        old.version = 7  # type: ignore[misc]
    with pytest.raises(TypeError):
        pickle.dumps(old)
    with pytest.raises(TypeError):
        keys.Keyring(PROD, 1, (), lambda r: pytest.fail(), pushprov.GOOGLE_PROFILE)


def test_the_last_proven_key_stays_until_its_successor_is_verified_with_the_partner() -> None:
    proven = dataclasses.replace(_record("A", State.ACTIVE), partner=Partner.VERIFIED)
    canary = dataclasses.replace(_record("B", State.ACTIVE), partner=Partner.CANARY)
    with pytest.raises(PartnerUnverifiedError, match=r"B \(canary\) is not verified") as info:
        plan_transition([proven, canary], proven, State.RETIRING, at=T0 + DAY)
    assert (info.value.code, info.value.exit_status) == ("partner_unverified", 31)
    # Forced, it goes, with a reason only.
    with pytest.raises(UsageError, match="reason"):
        plan_transition([proven, canary], proven, State.RETIRING, at=T0 + DAY, force=True)
    (forced,) = plan_transition(
        [proven, canary], proven, State.RETIRING, at=T0 + DAY, force=True, reason="B is fine"
    )
    assert forced.state is State.RETIRING
    # Once the successor is verified, or another proven key stays, the rule is met.
    verified = dataclasses.replace(canary, partner=Partner.VERIFIED)
    assert plan_transition([proven, verified], proven, State.RETIRING, at=T0 + DAY)
    legacy = _record("L", State.ACTIVE)  # active from before outcomes were kept: proven
    assert plan_transition([proven, canary, legacy], proven, State.RETIRING, at=T0 + DAY)
    # The final step of a retiring key is held the same way (the drain window is over here).
    retiring = dataclasses.replace(_record("A", State.RETIRING), partner=Partner.VERIFIED)
    with pytest.raises(PartnerUnverifiedError):
        plan_transition([retiring, canary], retiring, State.RETIRED, at=T0 + 30 * DAY)
    # A key the partner never proved is no "last proven key": nothing to hold.
    stopped = dataclasses.replace(canary, partner=Partner.STOPPED)
    fresh = dataclasses.replace(_record("C", State.ACTIVE), partner=Partner.CANARY)
    assert plan_transition([stopped, fresh], stopped, State.RETIRING, at=T0 + DAY)


def test_promotion_puts_an_outgoing_pgp_key_on_probation_and_outcomes_decide(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    first = ks.generate(PROD, user_id="I <i@x>", at=T0)
    assert ks.promote(PROD, first.key_id, at=T0).partner is Partner.CANARY
    verified = ks.set_partner(PROD, first.key_id, Partner.VERIFIED, at=T0, reason="20 accepted")
    assert verified is not None and verified.partner is Partner.VERIFIED
    # Decided already: a second worker's verdict changes nothing.
    assert ks.set_partner(PROD, first.key_id, Partner.STOPPED, at=T0, reason="late") is None
    second = ks.generate(PROD, user_id="I <i@x>", at=T0 + DAY)
    ks.promote(PROD, second.key_id, at=T0 + DAY)
    ks.record_evidence(PROD, {second.key_id: [(Role.SIGN, RoleEvidence(canary=1, last=5))]})
    ks.record_evidence(PROD, {second.key_id: [(Role.SIGN, RoleEvidence(canary=2, last=3))]})
    with pytest.raises(PartnerUnverifiedError):
        ks.retire(PROD, first.key_id, at=T0 + 2 * DAY)
    assert ks.set_partner(PROD, second.key_id, Partner.STOPPED, at=T0 + DAY, reason="rejected")
    ring = ks.snapshot(PROD)
    # Evidence added between a read and a commit is not written back older by the commit.
    assert ring.record(second.key_id).evidence["sign"] == RoleEvidence(canary=3, last=5)
    assert ring.record(second.key_id).partner is Partner.STOPPED
    assert ring.record(first.key_id).state is State.ACTIVE
    ks.retire(PROD, first.key_id, at=T0 + 2 * DAY, force=True, reason="B checked by hand")
    actions = [(e.action, e.key_id, e.reason) for e in ks.audit_log(PROD)]
    assert ("partner-verified", first.key_id, "20 accepted") in actions
    assert ("canary-stopped", second.key_id, "rejected") in actions
    assert actions[-1] == ("retire", first.key_id, "B checked by hand")
    ks.verify_audit(PROD)


def test_a_schema_3_sqlite_store_gains_the_partner_columns_on_open(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    first = ks.generate(PROD, user_id="I <i@x>", at=T0)  # pending: no partner state yet
    ks.close()
    # What a schema 3 store holds: no partner or evidence columns.
    with sqlite3.connect(tmp_path / "keystore.db") as db:
        db.execute("ALTER TABLE keys DROP COLUMN partner")
        db.execute("ALTER TABLE keys DROP COLUMN evidence")
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (b"3",))
    ks = keystore(sqlite_factory(tmp_path))
    try:
        # Its rows still check out (a row without partner state MACs as before), and the
        # first promotion on the upgraded store records one.
        assert ks.promote(PROD, first.key_id, at=T0).partner is Partner.CANARY
        assert ks.snapshot(PROD).record(first.key_id).partner is Partner.CANARY
    finally:
        ks.close()
    with sqlite3.connect(tmp_path / "keystore.db") as db:
        ((schema,),) = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall()
    assert bytes(schema) == b"4"


def test_a_service_file_from_before_schema_4_gains_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite"
    old = create_statements(SQLITE_SERVICE, ("meta", *SERVICE_TABLES), version=3)
    with sqlite3.connect(path) as db:
        for statement in old:
            db.execute(statement)
    path.chmod(0o600)
    state = SqliteServiceState(path)
    try:
        answer = StoredResponse(state.body_fingerprint(b"b"), 200, b"s", '{"sign":["A"]}')
        state.remember("c", "r", answer, at=T0, since=T0 - DAY)
        assert state.record_outcome("c", "r", "accepted", since=T0 - DAY).keys == ('{"sign":["A"]}')
    finally:
        state.close()
    SqliteServiceState(path).close()  # the next worker's start: nothing left to add


def test_rotation_moves_old_to_retiring_in_the_same_version(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    first = ks.generate(PROD, user_id="I <i@x>", at=T0)
    ks.promote(PROD, first.key_id, at=T0)
    second = ks.generate(PROD, user_id="I <i@x>", at=T0 + DAY)
    version = ks.snapshot(PROD).version
    ks.promote(PROD, second.key_id, at=T0 + 2 * DAY, replacing=[first.key_id], reason="yearly")
    ring = ks.snapshot(PROD)
    assert ring.version == version + 1
    assert ring.record(first.key_id).state is State.RETIRING
    assert ring.record(second.key_id).state is State.ACTIVE
    assert [k.fingerprint for k in ring.signing_keys(at=T0 + 2 * DAY)] == [second.key_id]
    assert {k.fingerprint for k in ring.decryption_keys()} == {first.key_id, second.key_id}
    tail = ks.audit_log(PROD)[-2:]
    assert [(e.action, e.key_id, e.from_state, e.to_state, e.version) for e in tail] == [
        ("promote", second.key_id, "pending", "active", version + 1),
        ("retire", first.key_id, "active", "retiring", version + 1),
    ]
    assert all(e.reason == "yearly" and e.actor == "alice" for e in tail)
    ks.rollback(PROD, first.key_id, at=T0 + 3 * DAY, reason="partner not ready")
    assert ks.snapshot(PROD).record(first.key_id).state is State.ACTIVE


def test_refused_transitions_change_nothing(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    before = ks.snapshot(PROD).version
    attempts: list[Callable[[], object]] = [
        lambda: ks.retire(PROD, record.key_id, at=T0),
        lambda: ks.rollback(PROD, record.key_id, at=T0),
        lambda: ks.retire(PROD, record.key_id, at=T0, final=True),
    ]
    for attempt in attempts:
        with pytest.raises(TransitionRefusedError):
            attempt()
    with pytest.raises(KeyNotFoundError):
        ks.promote(PROD, "0123456789ABCDEF", at=T0)
    with pytest.raises(KeyNotFoundError):
        ks.promote(SANDBOX, record.key_id, at=T0)
    with pytest.raises(UsageError):
        ks.destroy(PROD, record.key_id, at=T0, reason=" ")
    assert ks.snapshot(PROD).version == before
    assert len(ks.audit_log(PROD)) == before


def test_destroy_erases_the_secret_and_keeps_a_tombstone(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    ks.promote(PROD, record.key_id, at=T0)
    ks.retire(PROD, record.key_id, at=T0 + DAY)
    with pytest.raises(DrainWindowError):
        ks.retire(PROD, record.key_id, at=T0 + 2 * DAY, final=True)
    with pytest.raises(TransitionRefusedError):
        ks.destroy(PROD, record.key_id, at=T0 + 2 * DAY, reason="early")
    ks.retire(PROD, record.key_id, at=T0 + 8 * DAY, final=True)
    ring = ks.snapshot(PROD)
    assert ring.decryption_keys() == ()  # retired: refused inbound
    ks.destroy(PROD, record.key_id, at=T0 + 9 * DAY, reason="rotation done")
    ring = ks.snapshot(PROD)
    tomb = ring.record(record.key_id)
    assert tomb.state is State.DESTROYED and not tomb.has_secret
    assert [s for s, _ in tomb.transitions] == [
        State.PENDING,
        State.ACTIVE,
        State.RETIRING,
        State.RETIRED,
        State.DESTROYED,
    ]
    with pytest.raises(KeyUnusableError):
        ring.secret_key(tomb)
    with pytest.raises(KeyUnusableError):
        ks.export(PROD, record.key_id, at=T0 + 9 * DAY, secret_passphrase=b"pw")
    assert ks.export(PROD, record.key_id, at=T0 + 9 * DAY).startswith(b"-----BEGIN PGP PUBLIC")
    assert [e.action for e in ks.audit_log(PROD)][-1] == "destroy"


def test_expired_keys_are_never_used_outgoing(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    pool = key_pool()
    ours = ks.generate(PROD, user_id="I <i@x>", at=T0)
    google = ks.import_key(PROD, pool.partners[1].certificate.armor().encode(), at=T0)
    ks.promote(PROD, ours.key_id, at=T0)
    ks.promote(PROD, google.key_id, at=T0)
    late = T0 + 366 * DAY
    ring = ks.snapshot(PROD)
    assert ring.signing_keys(at=late) == () and ring.recipients(at=late) == ()
    assert len(ring.signing_keys(at=T0 + 364 * DAY)) == 1
    codes = {f.code for f in ks.check(PROD, at=late)}
    assert {"expired", "no_active_key"} <= codes
    assert {f.code for f in ks.check(PROD, at=T0 + 350 * DAY)} == {"expiring"}
    assert ks.check(PROD, at=T0 + DAY) == ()


def test_import_refuses_keys_beyond_the_policy(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    loose = Policy(max_key_lifetime=dt.timedelta(days=1100))
    long_lived = openpgp.generate_key(
        "Long <l@x>", bits=2048, validity=dt.timedelta(days=1000), at=T0, policy=loose
    )
    with pytest.raises(PolicyViolationError, match="lifetime exceeds 730 days"):
        ks.import_key(PROD, long_lived.certificate.armor().encode(), at=T0)
    pool = key_pool()
    with pytest.raises(PolicyViolationError, match="expired"):
        ks.import_key(PROD, pool.partners[0].certificate.armor().encode(), at=T0 + 400 * DAY)
    with pytest.raises(UsageError, match="certificate"):
        ks.import_key(PROD, pool.partners[0].armor().encode(), at=T0, owner="google")
    with pytest.raises(UsageError, match="secret"):
        ks.import_key(PROD, pool.ours[0].certificate.armor().encode(), at=T0, owner=OURS)
    assert ks.snapshot(PROD).records == ()


def test_environments_never_share_a_key(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    cert = key_pool().partners[2].certificate.armor().encode()
    ks.import_key(SANDBOX, cert, at=T0)
    with pytest.raises(TransitionRefusedError, match="sandbox"):
        ks.import_key(PROD, cert, at=T0)
    with pytest.raises(TransitionRefusedError, match="already"):
        ks.import_key(SANDBOX, cert, at=T0)
    assert ks.snapshot(PROD).records == ()


def test_import_of_our_secret_key_with_passphrase(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    key = key_pool().ours[3]
    with pytest.raises(PassphraseError):
        ks.import_key(PROD, key.armor(b"pp").encode(), at=T0)
    record = ks.import_key(PROD, key.armor(b"pp").encode(), at=T0, passphrase=b"pp")
    assert record.owner == OURS and record.has_secret
    exported = ks.export(PROD, record.key_id, at=T0, secret_passphrase=b"new pass")
    (back,) = openpgp.read_secret_keys(exported, passphrase=b"new pass")
    assert back.fingerprint == key.fingerprint
    assert ks.audit_log(PROD)[-1].action == "export-secret"


def test_self_test_of_our_key_opens_the_partners_test_message(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    pool = key_pool()
    google = pool.partners[0]
    gid = ks.import_key(PROD, google.certificate.armor().encode(), at=T0).key_id
    ours = ks.generate(PROD, user_id="I <i@x>", at=T0)
    cert = ks.snapshot(PROD).certificate(ks.snapshot(PROD).record(ours.key_id))
    wrong = openpgp.seal(b"t", sign_with=[google], encrypt_to=[pool.ours[5].certificate], at=T0)
    with pytest.raises(SelfTestFailedError, match="test message") as info:
        ks.promote(PROD, ours.key_id, at=T0, test_message=wrong)
    assert info.value.code == "self_test_failed"
    assert ks.snapshot(PROD).record(ours.key_id).state is State.PENDING
    unsigned_by_partner = openpgp.seal(b"t", sign_with=[pool.ours[5]], encrypt_to=[cert], at=T0)
    with pytest.raises(SelfTestFailedError):
        ks.promote(PROD, ours.key_id, at=T0, test_message=unsigned_by_partner)
    good = openpgp.seal(b"t", sign_with=[google], encrypt_to=[cert], at=T0)
    assert ks.promote(PROD, ours.key_id, at=T0, test_message=good).state is State.ACTIVE
    assert ks.promote(PROD, gid, at=T0).state is State.ACTIVE


def test_partner_promotion_needs_one_of_our_keys(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    gid = ks.import_key(PROD, key_pool().partners[0].certificate.armor().encode(), at=T0).key_id
    with pytest.raises(SelfTestFailedError, match="needs one of our keys"):
        ks.promote(PROD, gid, at=T0)
    ks.generate(PROD, user_id="I <i@x>", at=T0)  # pending is enough to sign the probe
    assert ks.promote(PROD, gid, at=T0).state is State.ACTIVE


def test_record_use_extends_the_drain_window(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    ks.promote(PROD, record.key_id, at=T0)
    ks.retire(PROD, record.key_id, at=T0 + DAY)
    version = ks.snapshot(PROD).version
    ks.record_use(PROD, [record.key_id], at=T0 + 3 * DAY)  # a seal from a stale snapshot
    ring = ks.snapshot(PROD)
    assert ring.version == version  # advisory: no new version
    assert ring.record(record.key_id).last_used == T0 + 3 * DAY
    with pytest.raises(DrainWindowError):
        ks.retire(PROD, record.key_id, at=T0 + 9 * DAY, final=True)
    ks.retire(PROD, record.key_id, at=T0 + 10 * DAY, final=True)


# ---------------------------------------------------------------------------------------------
# concurrency


def test_a_stale_writer_gets_a_conflict(tmp_path: Path, store_factory: StoreFactory) -> None:
    first = keystore(store_factory(tmp_path), actor="alice")
    second = keystore(store_factory(tmp_path), actor="bob")
    record = first.generate(PROD, user_id="I <i@x>", at=T0)
    stale = second.snapshot(PROD).version
    first.promote(PROD, record.key_id, at=T0)
    with pytest.raises(StoreConflictError) as info:
        second.retire(PROD, record.key_id, at=T0, expect_version=stale)
    assert info.value.code == "store_conflict"
    # At the store level: two changes built on the same version, only one lands.
    raw_a, raw_b = store_factory(tmp_path), store_factory(tmp_path)
    view = raw_a.read("production")
    raw_a.commit(Change(env="production", base_version=view.version))
    with pytest.raises(StoreConflictError):
        raw_b.commit(Change(env="production", base_version=view.version))
    assert raw_b.read("production").version == view.version + 1


# ---------------------------------------------------------------------------------------------
# audit log


def test_audit_chain_verifies_and_detects_tampering(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    ks.promote(PROD, record.key_id, at=T0)
    ks.retire(PROD, record.key_id, at=T0 + DAY, reason="rotation")
    head = ks.verify_audit(PROD)
    entries = ks.audit_log(PROD)
    assert head == entries[-1].hash
    assert entries[0].prev_hash == keys.genesis_hash("production")
    assert all(keys.entry_hash(e) == e.hash for e in entries)
    db = tmp_path / "keystore.db"

    def tamper(sql: str) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(sql)

    tamper("UPDATE audit SET reason = 'nothing to see' WHERE seq = 3")
    with pytest.raises(AuditTamperedError, match="altered"):
        ks.verify_audit(PROD)
    tamper("UPDATE audit SET reason = 'rotation' WHERE seq = 3")
    assert ks.verify_audit(PROD) == head
    # A state edited behind the store's back fails the row's MAC before any replay.
    tamper("UPDATE keys SET state = 'active'")
    with pytest.raises(StoreCorruptError, match="changed outside pushprov"):
        ks.verify_audit(PROD)
    tamper("UPDATE keys SET state = 'retiring'")
    assert ks.verify_audit(PROD) == head
    tamper("DELETE FROM audit WHERE seq = 3")
    with pytest.raises(AuditTamperedError, match="head"):
        ks.verify_audit(PROD)
    tamper("DELETE FROM audit WHERE seq = 2")
    with pytest.raises(AuditTamperedError) as info:
        ks.verify_audit(PROD)
    assert info.value.code == "audit_tampered"


# ---------------------------------------------------------------------------------------------
# secrets at rest, reprs


def _secret_needles(key: openpgp.SecretKey) -> dict[str, bytes]:
    """Byte strings that only the secret part of ``key`` contains, in each form it could leak."""
    needles: dict[str, bytes] = {}
    armored = key.armor()
    lines = [line for line in armored.splitlines() if line and not line.startswith(("-", "="))]
    body = "".join(lines[1:] if ":" in lines[0] else lines)
    binary = base64.b64decode(body + "=" * (-len(body) % 4))
    for index, (_, backend) in enumerate([*key.decryptors(), key.signer(GOOGLE_PROFILE, T0)]):
        numbers = backend.private_numbers()  # type: ignore[attr-defined]
        for name in ("d", "p", "q"):
            value: int = getattr(numbers, name)
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            needles[f"{name}{index}"] = raw[:32]
            needles[f"{name}{index}-hex"] = raw[:32].hex().encode()
        d_raw = numbers.d.to_bytes((numbers.d.bit_length() + 7) // 8, "big")
        offset = binary.index(d_raw)
        # A whole armor line that lies inside d: the armored secret, as a file would hold it.
        line = (offset * 4 // 3) // 64 + 1
        needles[f"armor-line{index}"] = body[line * 64 : (line + 1) * 64].encode()
        needles[f"binary{index}"] = binary[offset : offset + 48]
        assert needles[f"armor-line{index}"] in armored.encode()  # the needles are real
    return needles


def test_secret_material_never_reaches_the_file(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    pool = key_pool()
    generated = ks.generate(PROD, user_id="I <i@x>", at=T0)
    imported = ks.import_key(PROD, pool.ours[4].armor(b"pp").encode(), at=T0, passphrase=b"pp")
    ks.promote(PROD, generated.key_id, at=T0)
    ks.export(PROD, imported.key_id, at=T0, secret_passphrase=b"export pass")
    on_disk = store_files(tmp_path)
    ring = ks.snapshot(PROD)
    audit_text = repr(ks.audit_log(PROD)).encode()
    for record in (generated, imported):
        needles = _secret_needles(ring.secret_key(ring.record(record.key_id)))
        assert len(needles) == 2 * 8
        for name, needle in needles.items():
            assert needle not in on_disk, name
            assert needle not in audit_text, name
    # The sealed blob itself disappears from every file once the key is destroyed.
    with sqlite3.connect(tmp_path / "keystore.db") as conn:
        (sealed,) = conn.execute(
            "SELECT sealed_secret FROM keys WHERE key_id = ?", (imported.key_id,)
        ).fetchone()
    assert bytes(sealed)[20:84] in store_files(tmp_path)
    ks.promote(PROD, imported.key_id, at=T0)
    ks.retire(PROD, imported.key_id, at=T0)
    ks.retire(PROD, imported.key_id, at=T0 + 8 * DAY, final=True)
    ks.destroy(PROD, imported.key_id, at=T0 + 8 * DAY, reason="done")
    assert bytes(sealed)[20:84] not in store_files(tmp_path)


def test_a_moved_or_altered_sealed_secret_fails_its_integrity_check(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    a = ks.generate(PROD, user_id="A <a@x>", at=T0)
    b = ks.generate(PROD, user_id="B <b@x>", at=T0)
    with sqlite3.connect(tmp_path / "keystore.db") as conn:
        conn.execute(
            "UPDATE keys SET sealed_secret = (SELECT sealed_secret FROM keys WHERE key_id = ?) "
            "WHERE key_id = ?",
            (a.key_id, b.key_id),
        )
    fresh = keystore(sqlite_factory(tmp_path))
    with pytest.raises(StoreCorruptError):
        fresh.promote(PROD, b.key_id, at=T0)


def test_wrong_store_passphrase_is_refused(tmp_path: Path) -> None:
    sqlite_factory(tmp_path).close()
    with pytest.raises(PassphraseError, match="store passphrase"):
        SqliteStore.open(tmp_path / "keystore.db", passphrase=b"guess")
    with pytest.raises(UsageError, match="no key store"):
        SqliteStore.open(tmp_path / "other.db", passphrase=PASSPHRASE)


def test_reprs_show_no_secrets(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    record = ks.generate(PROD, user_id="I <i@x>", at=T0)
    ring = ks.snapshot(PROD)
    key = ring.secret_key(record)
    armored = key.armor()
    change = Change(env="production", base_version=1, secrets=((record.key_id, armored.encode()),))
    cache = keys.SecretCache()
    cache.put(armored.encode(), key)  # a cache that holds the key, so its repr could leak it
    assert len(cache) == 1
    assert isinstance(ks._store, store.SqliteStore)  # the instance, holding the sealing key
    texts = [repr(x) for x in (ring, record, change, ks, cache, ks._store)]
    texts.append(repr(ring.records))
    needles = _secret_needles(key)
    assert len(needles) == 2 * 8
    for text in texts:
        assert "PRIVATE" not in text and "PUBLIC KEY" not in text
        assert armored.splitlines()[3] not in text
        for name, needle in needles.items():
            assert needle not in text.encode(), name
    assert "version=1" in repr(ring) and record.key_id in repr(record)
    with pytest.raises(TypeError):
        pickle.dumps(cache)


# ---------------------------------------------------------------------------------------------
# files and permissions


def test_store_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "pushprov" / "keystore.db"
    opened = SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    try:
        # The -wal and -shm files exist only while a connection is open (the last close
        # removes them), so their modes are checked now, after a read.
        opened.read("production")
        wal = Path(f"{path}-wal")
        assert wal.exists()
        for extra in (wal, Path(f"{path}-shm")):
            if extra.exists():
                assert extra.stat().st_mode & 0o077 == 0, extra
    finally:
        opened.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_store_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    sqlite_factory(tmp_path).close()
    db = tmp_path / "keystore.db"
    db.chmod(mode)
    with pytest.raises(StoreInsecureError) as info:
        SqliteStore.open(db, passphrase=PASSPHRASE)
    assert info.value.code == "store_insecure"
    db.chmod(0o600)
    SqliteStore.open(db, passphrase=PASSPHRASE).close()


def test_store_in_an_open_directory_or_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    sqlite_factory(home).close()
    home.chmod(0o750)
    with pytest.raises(StoreInsecureError, match="directory"):
        SqliteStore.open(home / "keystore.db", passphrase=PASSPHRASE)
    home.chmod(0o700)
    link = home / "link.db"
    os.symlink(home / "keystore.db", link)
    with pytest.raises(StoreInsecureError, match="symbolic link"):
        SqliteStore.open(link, passphrase=PASSPHRASE)


def test_default_store_path_follows_xdg(tmp_path: Path) -> None:
    assert default_store_path({"XDG_DATA_HOME": str(tmp_path)}) == (
        tmp_path / "pushprov" / "keystore.db"
    )
    relative = default_store_path({"XDG_DATA_HOME": "relative/dir"})
    assert relative == Path.home() / ".local" / "share" / "pushprov" / "keystore.db"


# ---------------------------------------------------------------------------------------------
# public surface


def test_keys_and_store_exports_are_pinned() -> None:
    assert sorted(keys.__all__) == sorted(
        [
            "ALLOWED_EDGES", "DEFAULT_DRAIN_WINDOW", "DEFAULT_EXPIRY_WARNING", "OURS",
            "AttentionNeededError", "AuditTamperedError", "DrainWindowError", "Environment",
            "Finding", "Format", "KeyGenerator", "KeyNotFoundError", "KeyRecord", "Keyring",
            "Partner", "PartnerUnverifiedError", "RoleEvidence", "Sealing",
            "Keystore", "Role", "SecretCache", "SelfTestFailedError", "State",
            "FileKeySource", "KeySource", "KeyStatus", "ServiceKeys", "StoreKeySource",
            "TransitionRefusedError", "entry_hash", "findings", "genesis_hash", "key_id_of",
            "key_warnings", "partner_use",
        ]
    )  # fmt: skip
    assert sorted(store.__all__) == sorted(
        [
            "DEFAULT_KDF_LOG2N", "AuditEntry", "AuditTamperedError", "Backend", "Change",
            "ClientInfo", "KeyRow", "KeyringWatcher", "OutcomeRecord", "OutcomeResult",
            "PostgresServiceState", "PostgresStore",
            "ServiceState", "SqliteServiceState", "SqliteStore", "Store", "StoreConflictError",
            "StoreCorruptError", "StoreInsecureError", "StoreUnavailableError", "StoreView",
            "StoredResponse", "default_store_path", "migrate", "open_backend", "open_store",
            "passphrase_file_beside", "read_passphrase_beside", "redacted_url",
        ]
    )  # fmt: skip
    for module in (keys, store):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_error_codes_stay_unique_with_the_keystore_ones() -> None:
    errors: list[type[PushprovError]] = [
        getattr(pushprov, n) for n in pushprov.__all__ if n.endswith("Error")
    ]
    errors += [getattr(keys, n) for n in keys.__all__ if n.endswith("Error")]
    errors += [getattr(store, n) for n in store.__all__ if n.endswith("Error")]
    errors = [e for e in errors if not e.is_group]  # InputError, KeysError, StoreError
    errors = list(dict.fromkeys(errors))  # AuditTamperedError: the store's, re-exported by keys
    assert len({e.code for e in errors}) == len(errors)
    assert len({e.exit_status for e in errors}) == len(errors)
    assert keys.AttentionNeededError.exit_status == 30
