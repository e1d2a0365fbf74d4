"""Interoperability with real GnuPG 2.2, both directions: gpg is the judge, not our own reader.

Our keys are made at the suite's fixed T0 and gpg runs with ``--faked-system-time`` near T0;
gpg's own keys (``gpg_world``) are made relative to the real clock, so those tests open at now.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from pushprov import (
    Card,
    DecryptionFailedError,
    Encoding,
    Gopc,
    KeyUnusableError,
    Pan,
    PolicyViolationError,
    SignatureInvalidError,
    open_gopc,
    openpgp,
    seal_gopc,
)
from pushprov._clock import as_unix, from_unix

from .conftest import T0, Keys
from .gpg import Gpg, GpgWorld, packet_tags

NEAR_T0 = as_unix(T0) + 3600
SESSION = "ZmFrZS1zZXNzaW9uLWlkLWZyb20tZ29vZ2xlLXNkaw"
CARD = Card(account_number=Pan("4111111111111111"), expiry_month="12", expiry_year="29")


def _gopc() -> Gopc:
    return Gopc(server_session_id=SESSION, card=CARD)


def _import_ours(gpg: Gpg, keys: Keys) -> None:
    for signer in (keys.issuer_a, keys.issuer_b):
        gpg.import_key(signer.certificate.armor().encode())
        gpg.trust(signer.fingerprint)
    for google in (keys.google_1, keys.google_2):
        gpg.import_key(google.armor().encode())
        gpg.trust(google.fingerprint)


@pytest.mark.parametrize("encoding", [Encoding.BINARY, Encoding.ARMOR])
def test_gpg_opens_our_gopc_two_signers_two_recipients(
    gpg_factory: object, keys: Keys, encoding: Encoding
) -> None:
    sealed = seal_gopc(
        _gopc(),
        sign_with=[keys.issuer_a, keys.issuer_b],
        encrypt_to=[keys.google_1.certificate, keys.google_2.certificate],
        encoding=encoding,
        at=T0,
    )
    for decryptor in (keys.google_1, keys.google_2):
        gpg = gpg_factory()  # type: ignore[operator]
        gpg.import_key(decryptor.armor().encode())
        for signer in (keys.issuer_a, keys.issuer_b):
            gpg.import_key(signer.certificate.armor().encode())
            gpg.trust(signer.fingerprint)
        result = gpg.decrypt_verify(sealed, at=NEAR_T0)
        assert result.ok and result.goodmdc
        assert result.plaintext == _gopc().to_json()
        assert result.cipher_name == "AES256"
        assert result.hash_names == {"SHA384"}
        assert {keys.issuer_a.fingerprint, keys.issuer_b.fingerprint} <= result.goodsig_fprs
        assert len(result.good_signatures) == 2
        assert not (result.badsig or result.errsig or result.expkeysig or result.revkeysig)


def test_gpg_opens_our_base64_gopc_once_decoded(gpg: Gpg, keys: Keys) -> None:
    _import_ours(gpg, keys)
    sealed = seal_gopc(
        _gopc(), sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
    )
    assert sealed == base64.b64encode(base64.b64decode(sealed))  # standard, padded (RFC 4648 §4)
    result = gpg.decrypt_verify(base64.b64decode(sealed), at=NEAR_T0)
    assert result.ok and result.hash_names == {"SHA384"} and result.cipher_name == "AES256"
    assert result.plaintext == _gopc().to_json()


def test_gpg_imports_our_keys_with_the_right_shape(gpg: Gpg) -> None:
    key = openpgp.generate_key(
        "Issuer <ops@issuer.example>", bits=3072, validity=dt.timedelta(days=365), at=T0
    )
    gpg.import_key(key.armor(b"secret words").encode(), passphrase="secret words")
    listing = gpg.list_keys(key.fingerprint)
    assert listing.primary.capabilities == "sc"
    assert listing.primary.length == 3072
    assert [sub.capabilities for sub in listing.subkeys] == ["e"]
    expected_expiry = as_unix(T0) + 365 * 86400
    assert listing.primary.expires == expected_expiry
    assert listing.subkeys[0].expires == expected_expiry
    assert list(listing.uids) == ["Issuer <ops@issuer.example>"]
    secret = gpg.list_keys(key.fingerprint, secret=True)
    assert secret.primary.fingerprint == key.fingerprint


# ---------------------------------------------------------------------------------------------
# gpg -> us


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ours(world: GpgWorld, name: str) -> openpgp.SecretKey:
    key = world[name]
    passphrase = key.passphrase.encode() if key.passphrase else None
    return openpgp.read_secret_keys(key.secret, passphrase=passphrase)[0]


def _cert(world: GpgWorld, name: str) -> openpgp.Certificate:
    return openpgp.read_certificates(world[name].public)[0]


def test_we_import_gpg_keys_protected_and_not(gpg_world: GpgWorld) -> None:
    for name in ("alice", "dave", "sam"):
        secret = _ours(gpg_world, name)
        assert secret.fingerprint == gpg_world[name].fpr
        assert secret.certificate == _cert(gpg_world, name)
        capabilities = [info.capabilities for info in secret.key_infos()]
        assert capabilities == (["c", "s", "e"] if name == "sam" else ["cs", "e"])
        assert all(info.has_secret for info in secret.key_infos())
    with pytest.raises(Exception, match="passphrase"):
        openpgp.read_secret_keys(gpg_world["dave"].secret)
    with pytest.raises(Exception, match="passphrase"):
        openpgp.read_secret_keys(gpg_world["dave"].secret, passphrase=b"wrong")


@pytest.mark.parametrize("compress", ["none", "zip", "zlib", "bzip2"])
@pytest.mark.parametrize("armor", [False, True])
def test_we_open_gpg_messages(gpg_world: GpgWorld, compress: str, armor: bool) -> None:
    message = gpg_world.home.sign_encrypt(
        gpg_world.GOPC,
        recipients=[gpg_world["alice"].fpr, gpg_world["dave"].fpr],
        signers=[gpg_world["alice"].fpr, gpg_world["carol"].fpr],
        compress=compress,  # type: ignore[arg-type]
        armor=armor,
    )
    for decryptor in ("alice", "dave"):
        opened = openpgp.open_message(
            message,
            decrypt_with=[_ours(gpg_world, decryptor)],
            verify_with=[_cert(gpg_world, "carol")],
            at=_now(),
        )
        assert opened.plaintext == gpg_world.GOPC
        assert opened.signers == (gpg_world["carol"].fpr,)
        assert opened.signatures[0].hash_algorithm == "SHA384"
        assert opened.cipher == "AES256"


@pytest.mark.parametrize("encoding", ["base64", "base64url", "base64url-unpadded"])
def test_we_open_gpg_messages_in_both_base64_alphabets(gpg_world: GpgWorld, encoding: str) -> None:
    message = gpg_world.home.sign_encrypt(
        gpg_world.GOPC, recipients=[gpg_world["alice"].fpr], signers=[gpg_world["carol"].fpr]
    )
    encoded = {
        "base64": base64.b64encode(message),
        "base64url": base64.urlsafe_b64encode(message),
        "base64url-unpadded": base64.urlsafe_b64encode(message).rstrip(b"="),
    }[encoding]
    opened = openpgp.open_message(
        encoded,
        decrypt_with=[_ours(gpg_world, "alice")],
        verify_with=[_cert(gpg_world, "carol")],
        at=_now(),
    )
    assert opened.plaintext == gpg_world.GOPC


def test_we_open_gpg_wildcard_textmode_and_signing_subkey(gpg_world: GpgWorld) -> None:
    message = gpg_world.home.sign_encrypt(
        b"line one\nline two  \n",
        recipients=[gpg_world["alice"].fpr],
        signers=[gpg_world["sam"].fpr],
        throw_keyids=True,
        textmode=True,
    )
    assert packet_tags(gpg_world.home.list_packets(message))[:2] == [1, 18]
    opened = openpgp.open_message(
        message,
        decrypt_with=[_ours(gpg_world, "carol"), _ours(gpg_world, "alice")],
        verify_with=[_cert(gpg_world, "sam")],
        at=_now(),
    )
    assert opened.plaintext.replace(b"\r\n", b"\n") == b"line one\nline two  \n"
    assert opened.signatures[0].signing_key == gpg_world["sam"].signing_fpr
    assert opened.signatures[0].certificate == gpg_world["sam"].fpr


def test_we_open_a_gopc_from_gpg_with_the_session_check(gpg_world: GpgWorld) -> None:
    gopc = _gopc()
    message = gpg_world.home.sign_encrypt(
        gopc.to_json(), recipients=[gpg_world["alice"].fpr], signers=[gpg_world["carol"].fpr]
    )
    opened = open_gopc(
        base64.b64encode(message),
        session_id=SESSION,
        decrypt_with=[_ours(gpg_world, "alice")],
        verify_with=[_cert(gpg_world, "carol")],
        at=_now(),
    )
    assert opened.gopc == gopc


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"digest": "SHA1"}, PolicyViolationError, "SHA1"),
        # Ciphers outside the policy are never run: the one decryption failure (issue 14).
        ({"cipher": "CAST5"}, DecryptionFailedError, "could not be decrypted"),
        ({"cipher": "3DES"}, DecryptionFailedError, "could not be decrypted"),
        ({"mdc": False}, PolicyViolationError, "MDC"),
    ],
)
def test_gpg_messages_outside_the_profile_are_refused(
    gpg_world: GpgWorld, options: dict[str, object], error: type[Exception], match: str
) -> None:
    message = gpg_world.home.sign_encrypt(
        gpg_world.GOPC,
        recipients=[gpg_world["alice"].fpr],
        signers=[gpg_world["carol"].fpr],
        **options,  # type: ignore[arg-type]
    )
    with pytest.raises(error, match=match):
        openpgp.open_message(
            message,
            decrypt_with=[_ours(gpg_world, "alice")],
            verify_with=[_cert(gpg_world, "carol")],
            at=_now(),
        )


def test_gpg_unsigned_and_signed_only_are_refused(gpg_world: GpgWorld) -> None:
    alice = _ours(gpg_world, "alice")
    carol = _cert(gpg_world, "carol")
    unsigned = gpg_world.home.encrypt_only(gpg_world.GOPC, recipients=[gpg_world["alice"].fpr])
    with pytest.raises(SignatureInvalidError, match="not signed"):
        openpgp.open_message(unsigned, decrypt_with=[alice], verify_with=[carol], at=_now())
    signed = gpg_world.home.sign_only(gpg_world.GOPC, signers=[gpg_world["carol"].fpr])
    with pytest.raises(PolicyViolationError, match="not encrypted"):
        openpgp.open_message(signed, decrypt_with=[alice], verify_with=[carol], at=_now())


@pytest.mark.parametrize(
    ("message", "signer", "match"),
    [("msg_from_ed_to_alice", "ed", "expired"), ("msg_from_rex_to_alice", "rex", "revoked")],
)
def test_expired_and_revoked_gpg_signers_are_refused(
    gpg_world: GpgWorld, message: str, signer: str, match: str
) -> None:
    with pytest.raises(SignatureInvalidError, match=match):
        openpgp.open_message(
            gpg_world.messages[message],
            decrypt_with=[_ours(gpg_world, "alice")],
            verify_with=[_cert(gpg_world, signer)],
            at=_now(),
        )
    # gpg itself reports the same verdicts (and exits 0: its exit code is not a verdict).
    seen = gpg_world.home.decrypt_verify(gpg_world.messages[message])
    assert seen.expkeysig if signer == "ed" else seen.revkeysig


def test_expired_encryption_subkey_still_decrypts_but_is_never_sealed_to(
    gpg_world: GpgWorld,
) -> None:
    erin = _ours(gpg_world, "erin")
    opened = openpgp.open_message(
        gpg_world.messages["msg_to_erin"],
        decrypt_with=[erin],
        verify_with=[_cert(gpg_world, "alice")],
        at=_now(),
    )
    assert opened.plaintext == gpg_world.GOPC
    with pytest.raises(KeyUnusableError):
        openpgp.seal(
            b"x", sign_with=[_ours(gpg_world, "alice")], encrypt_to=[erin.certificate], at=_now()
        )


def test_signing_with_a_revoked_key_is_refused(gpg_world: GpgWorld) -> None:
    with pytest.raises(KeyUnusableError):
        openpgp.seal(
            b"x",
            sign_with=[_ours(gpg_world, "rex")],
            encrypt_to=[_cert(gpg_world, "alice")],
            at=from_unix(gpg_world.base + 3 * 3600),
        )
