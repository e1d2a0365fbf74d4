"""A full rotation in both directions, judged by GnuPG at every step.

Our signing key rotates A -> B and Google's encryption key G1 -> G2 while GOPCs are sealed
throughout from keystore snapshots (a snapshot taken before each step and one after), and
Google (played by gpg) keeps sending messages to whatever of our keys it knows. At every step:
gpg opens every GOPC we seal, its good signatures are exactly our active keys and its PKESKs
exactly the encryption subkeys of Google's active keys; every message Google sent opens for us
while its keys are active or retiring and is refused once they are retired.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from pushprov import (
    GOOGLE_PROFILE,
    Card,
    DecryptionFailedError,
    Gopc,
    Pan,
    PushprovError,
    SignatureInvalidError,
    open_message,
    openpgp,
    seal_gopc,
)
from pushprov._clock import as_unix
from pushprov.keys import KeyRecord, Keyring, Keystore, State
from pushprov.store import SqliteStore

from .conftest import T0, GpgFactory
from .gpg import Gpg
from .test_keystore_support import DAY, PASSPHRASE, PROD, key_pool, shared_cache

SESSION = "cm90YXRpb24tc2Vzc2lvbg"
CARD = Card(account_number=Pan("4111111111111111"), expiry_month="12", expiry_year="29")


@dataclasses.dataclass
class Inbound:
    """A message Google sealed to some of our keys and signed with some of its own."""

    message: bytes
    to: frozenset[str]
    signed_by: frozenset[str]


class Rotation:
    def __init__(self, ks: Keystore, gpg: Gpg) -> None:
        self.ks = ks
        self.gpg = gpg
        self.model: dict[str, State] = {}  # what the states must be, kept by hand
        self.at = T0 + dt.timedelta(hours=1)
        self.inbound: list[Inbound] = []
        self.sealed = 0
        self.refused = 0

    def in_state(self, *states: State, ours: bool) -> frozenset[str]:
        ring = self.ks.snapshot(PROD)
        return frozenset(
            k for k, s in self.model.items() if s in states and ring.record(k).ours == ours
        )

    def step(
        self, change: str, action: Callable[[], object], expect: dict[str, State] | None = None
    ) -> None:
        """Run one lifecycle step between a stale and a fresh snapshot, then check everything.

        ``expect`` says which states change; the key ``"new"`` names the record ``action``
        returns (a key that did not exist before).
        """
        stale = self.ks.snapshot(PROD)
        stale_expect = self._expected()
        result = action()
        for name, state in (expect or {}).items():
            key_id = name
            if name == "new":
                assert isinstance(result, KeyRecord)
                key_id = result.key_id
            self.model[key_id] = state
        fresh = self.ks.snapshot(PROD)
        assert {r.key_id: r.state for r in fresh.records} == self.model, change
        for ring, (signers, recipients) in ((stale, stale_expect), (fresh, self._expected())):
            self._seal_and_judge(ring, signers, recipients, change)
        self._google_sends(change)
        self._open_everything_google_sent(fresh, change)

    def _expected(self) -> tuple[frozenset[str], frozenset[str]]:
        return (
            self.in_state(State.ACTIVE, ours=True),
            self.in_state(State.ACTIVE, ours=False),
        )

    def _seal_and_judge(
        self, ring: Keyring, signers: frozenset[str], recipients: frozenset[str], change: str
    ) -> None:
        gopc = Gopc(server_session_id=SESSION, card=CARD)
        signing, encrypt_to = ring.signing_keys(at=self.at), ring.recipients(at=self.at)
        assert {k.fingerprint for k in signing} == signers, change
        sealed = seal_gopc(gopc, sign_with=signing, encrypt_to=encrypt_to, at=self.at)
        self.sealed += 1
        result = self.gpg.decrypt_verify(base64.b64decode(sealed), at=as_unix(self.at) + 60)
        assert result.ok and result.goodmdc, (change, result.stderr)
        assert result.plaintext == gopc.to_json()
        assert result.cipher_name == "AES256" and result.hash_names == {"SHA384"}
        assert {s.primary_fpr for s in result.good_signatures} == signers, change
        assert len(result.good_signatures) == len(signers)
        assert not (result.badsig or result.errsig or result.expkeysig or result.revkeysig)
        expected_ids = {
            ring.certificate(ring.record(k))
            .encryption_key(GOOGLE_PROFILE, self.at)
            .key_id.hex()
            .upper()
            for k in recipients
        }
        assert {k.upper() for k in result.enc_to} == expected_ids, change

    def _google_sends(self, change: str) -> None:
        """Google seals to every key of ours it has been told is active, signed by its own."""
        to = self.in_state(State.ACTIVE, ours=True)
        signed_by = self.in_state(State.ACTIVE, ours=False)
        message = self.gpg.sign_encrypt(
            f"from google at {change}".encode(),
            recipients=sorted(to),
            signers=sorted(signed_by),
            at=as_unix(self.at),
        )
        self.inbound.append(Inbound(message, to, signed_by))

    def _open_everything_google_sent(self, ring: Keyring, change: str) -> None:
        ours_usable = self.in_state(State.ACTIVE, State.RETIRING, ours=True)
        theirs_usable = self.in_state(State.ACTIVE, State.RETIRING, ours=False)
        for item in self.inbound:
            expected: type[PushprovError] | None = None
            if not item.to & ours_usable:
                expected = DecryptionFailedError
            elif not item.signed_by & theirs_usable:
                expected = SignatureInvalidError
            decrypt_with, verify_with = ring.decryption_keys(), ring.verification_certs()
            if expected is None:
                opened = open_message(
                    item.message, decrypt_with=decrypt_with, verify_with=verify_with, at=self.at
                )
                assert set(opened.signers) <= item.signed_by & theirs_usable, change
            else:
                self.refused += 1
                with pytest.raises(expected):
                    open_message(
                        item.message,
                        decrypt_with=decrypt_with,
                        verify_with=verify_with,
                        at=self.at,
                    )


@pytest.mark.gpg
def test_full_rotation_both_directions_judged_by_gpg(
    tmp_path: Path, gpg_factory: GpgFactory
) -> None:
    directory = tmp_path / "store"
    directory.mkdir(mode=0o700)
    store = SqliteStore.open(
        directory / "keystore.db", passphrase=PASSPHRASE, create=True, kdf_log2n=10
    )
    ks = Keystore(store, actor="rotation-test", secret_cache=shared_cache())
    pool = key_pool()
    g1, g2 = pool.partners[0], pool.partners[1]
    gpg = gpg_factory()
    for google in (g1, g2):  # gpg plays Google: it holds Google's secret keys
        gpg.import_key(google.armor().encode())
        gpg.trust(google.fingerprint)
    rotation = Rotation(ks, gpg)
    at = rotation.at
    g1_id, g2_id = g1.fingerprint, g2.fingerprint

    def our_key(name: str) -> KeyRecord:
        uid = f"Issuer {name} <{name}@issuer.example>"
        record = ks.generate(PROD, user_id=uid, at=rotation.at, bits=2048)
        gpg.import_key(ks.export(PROD, record.key_id, at=rotation.at))
        gpg.trust(record.key_id)
        return record

    # Bootstrap: A and G1 active.
    a = our_key("a").key_id
    ks.import_key(PROD, g1.certificate.armor().encode(), at=at)
    ks.promote(PROD, a, at=at)
    ks.promote(PROD, g1_id, at=at)
    rotation.model = {a: State.ACTIVE, g1_id: State.ACTIVE}
    rotation.step("bootstrap", lambda: None)

    # Our signing key: A -> B (a pending key changes nothing; then dual-sign; then B alone).
    rotation.step("generate B", lambda: our_key("b"), {"new": State.PENDING})
    b = next(k for k, s in rotation.model.items() if s is State.PENDING)
    rotation.at += DAY
    rotation.step("promote B", lambda: ks.promote(PROD, b, at=rotation.at), {b: State.ACTIVE})
    rotation.at += DAY
    rotation.step("retire A", lambda: ks.retire(PROD, a, at=rotation.at), {a: State.RETIRING})

    # Google's encryption key: G1 -> G2 (two recipients, then G2 alone).
    certificate = g2.certificate.armor().encode()
    rotation.step(
        "import G2",
        lambda: ks.import_key(PROD, certificate, at=rotation.at),
        {g2_id: State.PENDING},
    )
    rotation.at += DAY
    rotation.step(
        "promote G2", lambda: ks.promote(PROD, g2_id, at=rotation.at), {g2_id: State.ACTIVE}
    )
    _each_google_key_alone_opens(ks, gpg_factory, rotation.at, (g1, g2))
    rotation.at += DAY
    rotation.step(
        "retire G1", lambda: ks.retire(PROD, g1_id, at=rotation.at), {g1_id: State.RETIRING}
    )

    # Roll back and forward again: the old key signs again, then leaves once more.
    rotation.step("rollback A", lambda: ks.rollback(PROD, a, at=rotation.at), {a: State.ACTIVE})
    rotation.at += DAY
    rotation.step("retire A again", lambda: ks.retire(PROD, a, at=rotation.at), {a: State.RETIRING})

    # After the drain window: retired (refused inbound), then destroyed.
    rotation.at += 8 * DAY
    rotation.step(
        "retire A for good",
        lambda: ks.retire(PROD, a, at=rotation.at, final=True),
        {a: State.RETIRED},
    )
    rotation.step(
        "retire G1 for good",
        lambda: ks.retire(PROD, g1_id, at=rotation.at, final=True),
        {g1_id: State.RETIRED},
    )
    rotation.step(
        "destroy A",
        lambda: ks.destroy(PROD, a, at=rotation.at, reason="rotated"),
        {a: State.DESTROYED},
    )
    rotation.step(
        "destroy G1",
        lambda: ks.destroy(PROD, g1_id, at=rotation.at, reason="rotated"),
        {g1_id: State.DESTROYED},
    )

    assert rotation.sealed == 2 * 13 and len(rotation.inbound) == 13
    assert rotation.refused >= 10  # messages to or from retired keys were refused
    ks.verify_audit(PROD)
    assert ks.check(PROD, at=rotation.at) == ()


def _each_google_key_alone_opens(
    ks: Keystore, gpg_factory: GpgFactory, at: dt.datetime, googles: tuple[object, ...]
) -> None:
    """With two active Google keys, a GOPC opens with either secret key alone."""
    ring = ks.snapshot(PROD)
    sealed = seal_gopc(
        Gopc(server_session_id=SESSION, card=CARD),
        sign_with=ring.signing_keys(at=at),
        encrypt_to=ring.recipients(at=at),
        at=at,
    )
    for google in googles:
        assert isinstance(google, openpgp.SecretKey)
        alone = gpg_factory()
        alone.import_key(google.armor().encode())
        # This home lacks our certificates: judge the decryption only (gpg exits 2 on the
        # signature it cannot check).
        result = alone.decrypt_verify(base64.b64decode(sealed), at=as_unix(at) + 60, check=False)
        assert result.decryption_okay and result.goodmdc and result.decryption_key is not None
        assert result.decryption_key[1] == google.fingerprint
