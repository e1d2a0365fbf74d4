"""Key material: only verified self-signatures count; generation and import follow the policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushprov import (
    GOOGLE_PROFILE,
    KeyInvalidError,
    KeyUnusableError,
    PassphraseError,
    UsageError,
    openpgp,
)
from pushprov._clock import as_unix
from pushprov.openpgp._algorithms import new_hash
from pushprov.openpgp._cert import ComponentKey, public_body
from pushprov.openpgp._packets import Tag, encode_packet, read_packets
from pushprov.openpgp._rsa import SoftwareRsaKey
from pushprov.openpgp._signature import (
    KeyFlags,
    SigType,
    Sub,
    _subpackets,
    make_signature,
    parse_signature,
)

from .conftest import T0, Keys
from .gpg import Gpg


def _sign(
    signer: SoftwareRsaKey,
    issuer: ComponentKey,
    sig_type: int,
    data: bytes,
    subpackets: list[tuple[int, bytes]],
) -> bytes:
    hasher = new_hash(10)
    hasher.update(data)
    return make_signature(
        signer, fingerprint=issuer.fingerprint, sig_type=sig_type, hash_algo=10,
        data_hash=hasher, created=as_unix(T0), subpackets=subpackets,
    )  # fmt: skip


def _with_signing_subkey(key: openpgp.SecretKey, *, back_signed: bool) -> bytes:
    """The key's certificate plus an RSA signing subkey, with or without its back-signature."""
    primary = key.certificate._primary
    primary_ops = key._backends[primary.fingerprint]
    assert isinstance(primary_ops, SoftwareRsaKey)
    sub_private = rsa.generate_private_key(65537, 2048)
    sub = ComponentKey(public_body(as_unix(T0), sub_private.public_key()))
    data = primary.hash_prefix() + sub.hash_prefix()
    subpackets = [(Sub.KEY_FLAGS, bytes([KeyFlags.SIGN]))]
    if back_signed:
        back = _sign(SoftwareRsaKey(sub_private), sub, SigType.PRIMARY_KEY_BINDING, data, [])
        subpackets.append((Sub.EMBEDDED_SIGNATURE, back))
    binding = _sign(primary_ops, primary, SigType.SUBKEY_BINDING, data, subpackets)
    return (
        key.certificate.to_bytes()
        + encode_packet(Tag.PUBLIC_SUBKEY, sub.body)
        + encode_packet(Tag.SIGNATURE, binding)
    )


def test_signing_subkey_needs_its_back_signature(keys: Keys) -> None:
    bound = openpgp.read_certificates(_with_signing_subkey(keys.issuer_a, back_signed=True))[0]
    assert [info.capabilities for info in bound.key_infos()] == ["cs", "e", "s"]
    unbound = openpgp.read_certificates(_with_signing_subkey(keys.issuer_a, back_signed=False))[0]
    assert [info.capabilities for info in unbound.key_infos()] == ["cs", "e"]


def test_tampered_subkey_binding_drops_the_subkey(keys: Keys) -> None:
    data = bytearray(keys.google_1.certificate.to_bytes())
    data[-5] ^= 0x01  # inside the subkey binding signature's MPI
    cert = openpgp.read_certificates(bytes(data))[0]
    assert [info.capabilities for info in cert.key_infos()] == ["cs"]
    with pytest.raises(KeyUnusableError, match="no valid encryption key"):
        cert.encryption_key(GOOGLE_PROFILE, T0)


def test_tampered_user_id_certification_invalidates_the_key(keys: Keys) -> None:
    original = keys.google_1.certificate.to_bytes()
    data = original.replace(b"Google 1", b"Google X")
    assert data != original
    with pytest.raises(KeyInvalidError, match="no valid self-signature"):
        openpgp.read_certificates(data)


def test_generation_follows_the_policy() -> None:
    with pytest.raises(UsageError, match="730 days"):
        openpgp.generate_key("x <x@x.example>", bits=2048, validity=dt.timedelta(days=731), at=T0)
    with pytest.raises(UsageError, match="between 2048"):
        openpgp.generate_key("x <x@x.example>", bits=1024, at=T0)
    with pytest.raises(UsageError):
        openpgp.generate_key("two\nlines", bits=2048, at=T0)
    two_years = openpgp.generate_key(
        "x <x@x.example>", bits=2048, validity=dt.timedelta(days=730), at=T0
    )
    assert two_years.certificate.policy_problems(GOOGLE_PROFILE, T0) == []


def test_protected_export_round_trip(keys: Keys) -> None:
    armored = keys.issuer_a.armor(b"pass phrase").encode()
    assert b"PRIVATE KEY BLOCK" in armored
    again = openpgp.read_secret_keys(armored, passphrase=b"pass phrase")[0]
    assert again.certificate == keys.issuer_a.certificate
    message = openpgp.seal(b"x", sign_with=[again], encrypt_to=[keys.google_1.certificate], at=T0)
    assert (
        openpgp.open_message(
            message, decrypt_with=[keys.google_1], verify_with=[keys.issuer_a.certificate], at=T0
        ).plaintext
        == b"x"
    )
    with pytest.raises(PassphraseError):
        openpgp.read_secret_keys(armored)
    with pytest.raises(PassphraseError):
        openpgp.read_secret_keys(armored, passphrase=b"wrong")


def test_certificate_from_a_secret_key_file_has_no_secret(keys: Keys) -> None:
    cert = openpgp.read_certificates(keys.issuer_a.armor().encode())[0]
    assert cert == keys.issuer_a.certificate
    assert openpgp.contains_secret_key(keys.issuer_a.armor().encode())
    assert not openpgp.contains_secret_key(cert.armor().encode())
    with pytest.raises(KeyInvalidError, match="no secret"):
        openpgp.read_secret_keys(cert.armor().encode())


def test_policy_verdict_on_gpg_keys(gpg: Gpg) -> None:
    now = dt.datetime.now(dt.UTC)
    forever = gpg.gen_key("Forever <f@x.example>", algo="rsa2048", expire="never")
    long_lived = gpg.gen_key("Long <l@x.example>", algo="rsa2048", expire="3y")
    forever_cert = openpgp.read_certificates(gpg.export_public(forever))[0]
    long_cert = openpgp.read_certificates(gpg.export_public(long_lived))[0]
    assert "primary key never expires" in forever_cert.policy_problems(GOOGLE_PROFILE, now)
    problems = long_cert.policy_problems(GOOGLE_PROFILE, now)
    assert "primary key lifetime exceeds 730 days" in problems


def _preferences(key: openpgp.SecretKey) -> dict[int, bytes]:
    """The preference subpackets of the key's user ID certification."""
    certifications = [
        parse_signature(body)
        for tag, body in read_packets(key.certificate.to_bytes())
        if tag == Tag.SIGNATURE and body[1] == SigType.POSITIVE_CERT
    ]
    (certification,) = certifications
    wanted = (Sub.PREFERRED_CIPHERS, Sub.PREFERRED_HASHES, Sub.PREFERRED_COMPRESSION)
    return {
        kind: data
        for kind, _critical, data in _subpackets(certification.hashed_area)
        if kind in wanted
    }


def test_generated_preferences_come_from_the_policy(keys: Keys) -> None:
    # Google's profile writes what generation always wrote: AES-256/192/128,
    # SHA-384/512/256, ZLIB/ZIP/uncompressed.
    assert _preferences(keys.issuer_a) == {
        Sub.PREFERRED_CIPHERS: bytes([9, 8, 7]),
        Sub.PREFERRED_HASHES: bytes([9, 10, 8]),
        Sub.PREFERRED_COMPRESSION: bytes([2, 1, 0]),
    }
    other = dataclasses.replace(
        GOOGLE_PROFILE,
        preferred_ciphers=("AES128",),
        preferred_hashes=("SHA512", "SHA384"),
        preferred_compression=("UNCOMPRESSED", "BZIP2"),
    )
    key = openpgp.generate_key("Prefs <p@x.example>", bits=2048, at=T0, policy=other)
    assert _preferences(key) == {
        Sub.PREFERRED_CIPHERS: bytes([7]),
        Sub.PREFERRED_HASHES: bytes([10, 9]),
        Sub.PREFERRED_COMPRESSION: bytes([0, 3]),
    }
    assert openpgp.read_certificates(key.certificate.to_bytes()) == [key.certificate]


@pytest.mark.parametrize(
    "change",
    [
        {"preferred_ciphers": ()},
        {"preferred_hashes": ("SHA384", "SHA384")},
        {"preferred_compression": ("ZLIB", "ZLIB")},
    ],
)
def test_policy_refuses_empty_or_repeated_preferences(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="distinct names, at least one"):
        dataclasses.replace(GOOGLE_PROFILE, **change)  # type: ignore[arg-type]
