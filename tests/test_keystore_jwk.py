"""Keystore with JWK keys: generate, import, self-tests, the one-active-per-role rule, keyring
methods for the JWE envelope, secrets at rest. Store-backed tests run over every store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushprov import (
    KeyInvalidError,
    KeyUnusableError,
    PolicyViolationError,
    UnsupportedError,
    UsageError,
    jose,
    openpgp,
)
from pushprov.jose._compact import b64u_encode
from pushprov.keys import (
    OURS,
    Format,
    Keystore,
    Role,
    SelfTestFailedError,
    State,
    TransitionRefusedError,
)
from pushprov.store import Change, StoreCorruptError

from .conftest import T0
from .test_keystore_support import (
    DAY,
    PROD,
    SANDBOX,
    STORE_FACTORIES,
    StoreFactory,
    key_pool,
    keystore,
    sqlite_factory,
    store_files,
)

YEAR = 365 * DAY
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi")


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    return STORE_FACTORIES[request.param](request)


@functools.cache
def jwk(
    name: str, *, use: str | None = None, alg: str | None = None, validity: dt.timedelta = YEAR
) -> jose.JwkKey:
    """A 2048-bit JWK per name, made once per session at T0, kid = name."""
    return jose.generate_jwk(bits=2048, at=T0, use=use, alg=alg, kid=name, validity=validity)


def public(key: jose.JwkKey) -> bytes:
    return key.public().to_json().encode()


def private(key: jose.JwkKey) -> bytes:
    return key.to_json(private=True).encode()


def edited(key: jose.JwkKey, *, private_part: bool = False, **members: object) -> bytes:
    """The key's JWK with members replaced (None: removed)."""
    document = json.loads(key.to_json(private=private_part))
    for name, value in members.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return json.dumps(document).encode()


def jwk_world(ks: Keystore, at: dt.datetime = T0) -> dict[str, str]:
    """Ours: a signing and a decryption JWK (generated); Google's: both (imported); all active."""
    ids = {
        "sign": ks.generate(PROD, at=at, key_format=Format.JWK, use="sig", bits=2048).key_id,
        "decrypt": ks.generate(PROD, at=at, key_format=Format.JWK, use="enc", bits=2048).key_id,
        "encrypt": ks.import_key(PROD, public(jwk("g-enc", use="enc")), at=at).key_id,
        "verify": ks.import_key(PROD, public(jwk("g-sig", use="sig")), at=at).key_id,
    }
    for key_id in ids.values():
        ks.promote(PROD, key_id, at=at)
    return ids


# ---------------------------------------------------------------------------------------------
# generate, import, keyring


def test_jwk_generate_import_promote_and_the_jwe_keyring(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    ids = jwk_world(ks)
    ring = ks.snapshot(PROD)
    roles = {role: ring.record(key_id) for role, key_id in ids.items()}
    for role, record in roles.items():
        assert record.format is Format.JWK and record.state is State.ACTIVE
        assert record.roles == frozenset({Role(role)})
        assert record.has_secret == record.ours == (role in ("sign", "decrypt"))
        assert record.expires == record.created + YEAR  # policy default, recorded as exp
        stored = json.loads(record.public)
        assert stored["kid"] == record.key_id and not set(_PRIVATE) & stored.keys()
        assert stored["use"] == ("sig" if role in ("sign", "verify") else "enc")
        assert (stored["iat"], stored["exp"]) == (
            int(record.created.timestamp()),
            int(record.expires.timestamp()),
        )
    assert roles["sign"].owner == OURS and roles["encrypt"].owner == "google"
    assert ids["encrypt"] == "g-enc" and ids["verify"] == "g-sig"
    # The JWE methods give one key per outgoing role and every inbound one ...
    signer, recipient = ring.jwe_signing_key(at=T0), ring.jwe_recipient(at=T0)
    assert signer is not None and signer.is_private and signer.kid == ids["sign"]
    assert recipient is not None and not recipient.is_private and recipient.kid == "g-enc"
    assert [k.kid for k in ring.jwe_decryption_keys()] == [ids["decrypt"]]
    assert all(k.is_private for k in ring.jwe_decryption_keys())
    assert [k.kid for k in ring.jwe_verification_keys()] == ["g-sig"]
    # ... the OpenPGP ones see none of them, and none of an expired key.
    assert ring.signing_keys(at=T0) == () and ring.recipients(at=T0) == ()
    assert ring.decryption_keys() == () and ring.verification_certs() == ()
    assert ring.jwe_signing_key(at=T0 + 2 * YEAR) is None
    assert ring.jwe_recipient(at=T0 + 2 * YEAR) is None
    with pytest.raises(KeyUnusableError):
        ring.certificate(roles["sign"])
    with pytest.raises(KeyUnusableError):
        ring.secret_key(roles["sign"])
    # Both directions work with what the keyring hands out.
    token = jose.seal_jwe(b"to google", sign_with=signer, encrypt_to=recipient, at=T0)
    opened = jose.open_jwe(
        token,
        decrypt_with=[jwk("g-enc", use="enc")],
        verify_with=[ring.public_jwk(roles["sign"])],
        at=T0,
    )
    assert opened.plaintext == b"to google" and opened.signatures[0].signing_key == ids["sign"]
    inbound = jose.seal_jwe(
        b"from google",
        sign_with=jwk("g-sig", use="sig"),
        encrypt_to=ring.public_jwk(roles["decrypt"]),
        at=T0,
    )
    assert (
        jose.open_jwe(
            inbound,
            decrypt_with=ring.jwe_decryption_keys(),
            verify_with=ring.jwe_verification_keys(),
            at=T0,
        ).plaintext
        == b"from google"
    )
    # Public export is the public JWK; the private part never leaves the store.
    assert ks.export(PROD, ids["sign"], at=T0) == roles["sign"].public
    with pytest.raises(UnsupportedError, match="stays in the store"):
        ks.export(PROD, ids["sign"], at=T0, secret_passphrase=b"pp")


def test_one_active_jwk_per_role_switches_with_replacing(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    ids = jwk_world(ks)
    new_sig = ks.generate(PROD, at=T0 + DAY, key_format=Format.JWK, use="sig", bits=2048)
    with pytest.raises(TransitionRefusedError, match="one active key per role"):
        ks.promote(PROD, new_sig.key_id, at=T0 + DAY)
    assert ks.snapshot(PROD).record(new_sig.key_id).state is State.PENDING
    # Replacing a key of another role is refused; the same role switches in one version.
    with pytest.raises(TransitionRefusedError, match="same role"):
        ks.promote(PROD, new_sig.key_id, at=T0 + DAY, replacing=[ids["decrypt"]])
    version = ks.snapshot(PROD).version
    ks.promote(PROD, new_sig.key_id, at=T0 + DAY, replacing=[ids["sign"]], reason="rotate")
    ring = ks.snapshot(PROD)
    assert ring.version == version + 1
    assert ring.record(ids["sign"]).state is State.RETIRING
    signer = ring.jwe_signing_key(at=T0 + DAY)
    assert signer is not None and signer.kid == new_sig.key_id
    # A partner key switches the same way: the new recipient is the only one.
    ks.import_key(PROD, public(jwk("g-enc-2", use="enc")), at=T0 + DAY)
    ks.promote(PROD, "g-enc-2", at=T0 + DAY, replacing=["g-enc"])
    recipient = ks.snapshot(PROD).jwe_recipient(at=T0 + DAY)
    assert recipient is not None and recipient.kid == "g-enc-2"
    # Decryption keys: the retiring one stays accepted inbound until it is retired for good.
    new_enc = ks.generate(PROD, at=T0 + DAY, key_format=Format.JWK, use="enc", bits=2048)
    ks.promote(PROD, new_enc.key_id, at=T0 + DAY, replacing=[ids["decrypt"]])
    kids = {k.kid for k in ks.snapshot(PROD).jwe_decryption_keys()}
    assert kids == {new_enc.key_id, ids["decrypt"]}
    # Rollback is a switch too, and obeys the same rule.
    with pytest.raises(TransitionRefusedError, match="one active key per role"):
        ks.rollback(PROD, ids["decrypt"], at=T0 + 2 * DAY)
    ks.rollback(PROD, ids["decrypt"], at=T0 + 2 * DAY, replacing=[new_enc.key_id])
    ks.retire(PROD, new_enc.key_id, at=T0 + 10 * DAY, final=True)
    ks.destroy(PROD, new_enc.key_id, at=T0 + 10 * DAY, reason="rolled back")
    ring = ks.snapshot(PROD)
    assert [k.kid for k in ring.jwe_decryption_keys()] == [ids["decrypt"]]
    assert not ring.record(new_enc.key_id).has_secret
    with pytest.raises(KeyUnusableError, match="no secret"):
        ring.secret_jwk(ring.record(new_enc.key_id))
    ks.record_use(PROD, [ids["decrypt"]], at=T0 + 3 * DAY)
    assert ks.snapshot(PROD).record(ids["decrypt"]).last_used == T0 + 3 * DAY
    assert ks.verify_audit(PROD)


def test_jwk_import_roles_and_what_is_refused(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    bare = jwk("bare")  # no "use"
    with pytest.raises(UsageError, match='"sig" or "enc"'):
        ks.import_key(PROD, public(bare), at=T0)
    with pytest.raises(UsageError, match='its use is "enc"'):
        ks.import_key(PROD, public(jwk("g-enc", use="enc")), at=T0, use="sig")
    with pytest.raises(UsageError, match="private part"):
        ks.import_key(PROD, public(jwk("g-enc", use="enc")), at=T0, owner=OURS)
    with pytest.raises(UsageError, match="never with its private part"):
        ks.import_key(PROD, private(jwk("g-enc", use="enc")), at=T0, owner="google")
    with pytest.raises(UsageError, match="no passphrase"):
        ks.import_key(PROD, private(bare), at=T0, use="sig", passphrase=b"pp")
    with pytest.raises(UsageError, match="JWK and PEM"):
        ks.import_key(PROD, key_pool().partners[0].certificate.armor().encode(), at=T0, use="enc")
    with pytest.raises(KeyInvalidError, match="JWK set"):
        ks.import_key(PROD, b'{"keys": [' + public(bare) + b"]}", at=T0)
    # Lifetime as for OpenPGP: an exp is required, two years at most, not expired.
    with pytest.raises(PolicyViolationError, match="no expiry"):
        ks.import_key(PROD, edited(bare, exp=None), at=T0, use="sig")
    with pytest.raises(UsageError, match="own expiry"):
        ks.import_key(PROD, public(bare), at=T0, use="sig", validity=YEAR)
    with pytest.raises(PolicyViolationError, match="lifetime"):
        ks.import_key(PROD, edited(bare, exp=None), at=T0, use="sig", validity=3 * YEAR)
    with pytest.raises(PolicyViolationError, match="lifetime"):
        ks.import_key(PROD, edited(bare, exp=int((T0 + 3 * YEAR).timestamp())), at=T0, use="sig")
    with pytest.raises(PolicyViolationError, match="expired"):
        ks.import_key(PROD, public(bare), at=T0 + 2 * YEAR, use="sig")
    with pytest.raises(PolicyViolationError, match="pinned"):
        ks.import_key(PROD, edited(bare, alg="RS256"), at=T0, use="enc")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(PolicyViolationError, match="2048"):
        ks.import_key(PROD, small_pem, at=T0, use="enc", validity=YEAR)
    assert ks.snapshot(PROD).records == ()
    # A PEM key (no metadata at all) gets its role, iat and exp from the import.
    pem = jwk("pem")._public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = ks.import_key(PROD, pem, at=T0 + DAY, use="enc", validity=180 * DAY, owner="google")
    assert record.key_id == jwk("pem").thumbprint and record.roles == {Role.ENCRYPT}
    assert (record.created, record.expires) == (T0 + DAY, T0 + 181 * DAY)
    assert json.loads(record.public)["use"] == "enc"
    ks.promote(PROD, record.key_id, at=T0 + DAY)
    # Our private JWK, pinned to RSA1_5: a decryption key for the legacy algorithm.
    legacy = ks.import_key(PROD, private(jwk("legacy", use="enc", alg="RSA1_5")), at=T0)
    assert (legacy.owner, legacy.roles, legacy.has_secret) == (
        OURS,
        frozenset({Role.DECRYPT}),
        True,
    )
    ks.promote(PROD, "legacy", at=T0)
    key = ks.snapshot(PROD).jwe_decryption_keys()[0]
    assert key.alg == "RSA1_5"
    # A key is in one environment only, and in it once.
    with pytest.raises(TransitionRefusedError, match="environments never share"):
        ks.import_key(SANDBOX, private(jwk("legacy", use="enc", alg="RSA1_5")), at=T0)
    with pytest.raises(TransitionRefusedError, match="already in production"):
        ks.import_key(PROD, public(jwk("pem")), at=T0, use="enc")
    # generate: a JWK has one role of its side and no user ID; use/alg are JWK words.
    with pytest.raises(UsageError, match='"sig" or "enc"'):
        ks.generate(PROD, at=T0, key_format=Format.JWK)
    with pytest.raises(UsageError, match="no user ID"):
        ks.generate(PROD, at=T0, key_format=Format.JWK, use="sig", user_id="I <i@x>")
    with pytest.raises(UsageError, match="format jwk"):
        ks.generate(PROD, at=T0, user_id="I <i@x>", use="sig")
    with pytest.raises(UsageError, match="user ID"):
        ks.generate(PROD, at=T0)
    with pytest.raises(PolicyViolationError, match="lifetime"):
        ks.generate(PROD, at=T0, key_format=Format.JWK, use="sig", validity=3 * YEAR)
    with pytest.raises(PolicyViolationError, match="alg"):
        ks.generate(PROD, at=T0, key_format=Format.JWK, use="sig", alg="RSA1_5")


# ---------------------------------------------------------------------------------------------
# self-tests


def test_partner_jwk_self_tests(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    # An encryption key is sealed to: a key whose key_ops forbid encrypting fails that.
    no_encrypt = edited(jwk("g-enc", use="enc"), key_ops=["verify"])
    refused = ks.import_key(PROD, no_encrypt, at=T0).key_id
    with pytest.raises(SelfTestFailedError, match="sealing to g-enc failed"):
        ks.promote(PROD, refused, at=T0)
    assert ks.snapshot(PROD).record(refused).state is State.PENDING
    ks.destroy(PROD, refused, at=T0, reason="bad key_ops")
    good = ks.import_key(PROD, public(jwk("g-enc-ok", use="enc")), at=T0)
    assert ks.promote(PROD, good.key_id, at=T0).state is State.ACTIVE
    other = ks.import_key(PROD, public(jwk("g-enc-2", use="enc")), at=T0).key_id
    with pytest.raises(UsageError, match="decrypts or verifies"):
        ks.promote(PROD, other, at=T0, test_message=b"x", replacing=[good.key_id])
    # A signing key: policy checks only (we cannot sign with it) ...
    verify = ks.import_key(PROD, public(jwk("g-sig", use="sig")), at=T0).key_id
    decrypt = ks.generate(PROD, at=T0, key_format=Format.JWK, use="enc", bits=2048)
    ours = ks.snapshot(PROD).public_jwk(decrypt)
    # ... unless the partner sent a test message it signed, sealed to one of our keys.
    forged = jose.seal_jwe(b"t", sign_with=jwk("other", use="sig"), encrypt_to=ours, at=T0)
    with pytest.raises(SelfTestFailedError, match="does not open and verify"):
        ks.promote(PROD, verify, at=T0, test_message=forged)
    signed = jose.seal_jwe(b"t", sign_with=jwk("g-sig", use="sig"), encrypt_to=ours, at=T0)
    assert ks.promote(PROD, verify, at=T0, test_message=signed).state is State.ACTIVE
    plain = ks.import_key(PROD, public(jwk("g-sig-2", use="sig")), at=T0).key_id
    assert ks.promote(PROD, plain, at=T0, replacing=[verify]).state is State.ACTIVE


def test_partner_signing_key_test_message_needs_our_decryption_jwk(
    tmp_path: Path, store_factory: StoreFactory
) -> None:
    ks = keystore(store_factory(tmp_path))
    verify = ks.import_key(PROD, public(jwk("g-sig", use="sig")), at=T0).key_id
    with pytest.raises(SelfTestFailedError, match="needs one of our JWK decryption keys"):
        ks.promote(PROD, verify, at=T0, test_message=b"a.b.c.d.e")


def test_our_jwk_self_tests(tmp_path: Path, store_factory: StoreFactory) -> None:
    ks = keystore(store_factory(tmp_path))
    # Our decryption key opens a partner's test message sealed to it and signed by a partner
    # signing key we hold; a message for another key is refused.
    ks.promote(PROD, ks.import_key(PROD, public(jwk("g-sig", use="sig")), at=T0).key_id, at=T0)
    decrypt = ks.generate(PROD, at=T0, key_format=Format.JWK, use="enc", bits=2048)
    ours = ks.snapshot(PROD).public_jwk(decrypt)
    elsewhere = jose.seal_jwe(
        b"t", sign_with=jwk("g-sig", use="sig"), encrypt_to=jwk("x", use="enc").public(), at=T0
    )
    with pytest.raises(SelfTestFailedError, match="test message"):
        ks.promote(PROD, decrypt.key_id, at=T0, test_message=elsewhere)
    unsigned_by_partner = jose.seal_jwe(
        b"t", sign_with=jwk("other", use="sig"), encrypt_to=ours, at=T0
    )
    with pytest.raises(SelfTestFailedError, match="test message"):
        ks.promote(PROD, decrypt.key_id, at=T0, test_message=unsigned_by_partner)
    good = jose.seal_jwe(b"t", sign_with=jwk("g-sig", use="sig"), encrypt_to=ours, at=T0)
    assert ks.promote(PROD, decrypt.key_id, at=T0, test_message=good).state is State.ACTIVE
    sign = ks.generate(PROD, at=T0, key_format=Format.JWK, use="sig", bits=2048)
    with pytest.raises(UsageError, match="decrypts or verifies"):
        ks.promote(PROD, sign.key_id, at=T0, test_message=good)
    assert ks.promote(PROD, sign.key_id, at=T0).state is State.ACTIVE


@pytest.mark.parametrize("use", ["sig", "enc"])
def test_our_jwk_whose_public_half_is_not_its_own_fails_the_self_test(
    tmp_path: Path, use: str
) -> None:
    """The self-test proves the private key against the stored public half (what we publish),
    even a public half the store vouches for (written through it, so its MAC checks)."""
    store = sqlite_factory(tmp_path)
    ks = keystore(store)
    record = ks.import_key(PROD, private(jwk(f"ours-{use}", use=use)), at=T0)
    impostor = edited(jwk("impostor", use=use), kid=record.key_id)
    # Written behind the store's back, the swap is refused before any self-test.
    with sqlite3.connect(tmp_path / "keystore.db") as conn:
        (original,) = conn.execute("SELECT public FROM keys").fetchone()
        conn.execute("UPDATE keys SET public = ? WHERE key_id = ?", (impostor, record.key_id))
    with pytest.raises(StoreCorruptError, match="changed outside pushprov"):
        ks.promote(PROD, record.key_id, at=T0)
    with sqlite3.connect(tmp_path / "keystore.db") as conn:
        conn.execute("UPDATE keys SET public = ? WHERE key_id = ?", (original, record.key_id))
    view = store.read(PROD.value)
    (row,) = view.keys
    swapped = dataclasses.replace(row, public=impostor)
    store.commit(Change(env=PROD.value, base_version=view.version, upsert=(swapped,)))
    with pytest.raises(SelfTestFailedError, match=f"ours-{use}"):
        ks.promote(PROD, record.key_id, at=T0)
    assert ks.snapshot(PROD).record(record.key_id).state is State.PENDING


def test_our_jwk_self_test_refuses_a_key_that_cannot_do_its_job(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    key = jwk("no-sign", use="sig")
    record = ks.import_key(PROD, edited(key, private_part=True, key_ops=["verify"]), at=T0)
    with pytest.raises(SelfTestFailedError, match="signing with no-sign failed"):
        ks.promote(PROD, record.key_id, at=T0)


# ---------------------------------------------------------------------------------------------
# secrets at rest, reprs


def test_jwk_secrets_never_reach_the_file(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    generated = ks.generate(PROD, at=T0, key_format=Format.JWK, use="sig", bits=2048)
    imported = ks.import_key(PROD, private(jwk("ours-enc", use="enc")), at=T0)
    ks.promote(PROD, generated.key_id, at=T0)
    ks.promote(PROD, imported.key_id, at=T0)
    ring = ks.snapshot(PROD)
    on_disk = store_files(tmp_path)
    texts = repr(ks.audit_log(PROD)) + repr(ring) + repr(ring.records) + repr(ks)
    for record in (generated, imported):
        secret = ring.secret_jwk(ring.record(record.key_id))
        document = json.loads(secret.to_json(private=True))
        assert secret._secret is not None
        numbers = secret._secret.private_numbers()
        for name in _PRIVATE:
            assert document[name].encode() not in on_disk, name
            assert document[name] not in texts + repr(secret), name
        d = numbers.d.to_bytes((numbers.d.bit_length() + 7) // 8, "big")
        for offset in range(0, len(d) - 32, 64):
            assert d[offset : offset + 32] not in on_disk
        assert b64u_encode(d)[:40] not in on_disk
    # A secret sealed for one record does not open as another's.
    with sqlite3.connect(tmp_path / "keystore.db") as conn:
        conn.execute(
            "UPDATE keys SET sealed_secret = (SELECT sealed_secret FROM keys WHERE key_id = ?) "
            "WHERE key_id = ?",
            (generated.key_id, imported.key_id),
        )
    fresh = keystore(sqlite_factory(tmp_path))
    fresh_ring = fresh.snapshot(PROD)
    with pytest.raises(StoreCorruptError):
        fresh_ring.secret_jwk(fresh_ring.record(imported.key_id))


def test_a_pgp_key_and_a_jwk_live_side_by_side(tmp_path: Path) -> None:
    ks = keystore(sqlite_factory(tmp_path))
    pgp = ks.generate(PROD, user_id="I <i@x>", at=T0)
    google = ks.import_key(PROD, key_pool().partners[0].certificate.armor().encode(), at=T0)
    ks.promote(PROD, pgp.key_id, at=T0)
    ks.promote(PROD, google.key_id, at=T0)
    ids = jwk_world(ks)
    ring = ks.snapshot(PROD)
    assert [k.fingerprint for k in ring.signing_keys(at=T0)] == [pgp.key_id]
    assert isinstance(ring.signing_keys(at=T0)[0], openpgp.SecretKey)
    signer = ring.jwe_signing_key(at=T0)
    assert signer is not None and signer.kid == ids["sign"]
    with pytest.raises(KeyUnusableError, match="not a JWK"):
        ring.public_jwk(ring.record(pgp.key_id))
    assert ks.check(PROD, at=T0) == ()
