"""Published vectors driven through our own code paths.

* Wycheproof (C2SP/wycheproof @ dac1dd47, copied unmodified into tests/vectors/wycheproof):
  RSAES-PKCS1-v1_5 decryption through the PKESK RSA step, RSASSA-PKCS1-v1_5 SHA-384 verification
  through the signature verifier, and SHA-384 signature generation byte-exact through the signer.
* draft-bre-openpgp-samples: Bob's RSA-3072 key and a message to him, signed by him.
* RFC 9580 Appendix A: v6 keys, AEAD and password messages must be refused clearly, never crash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushprov import (
    GOOGLE_PROFILE,
    DecryptionFailedError,
    KeyInvalidError,
    MalformedInputError,
    PolicyViolationError,
    PushprovError,
    UnsupportedError,
    openpgp,
)
from pushprov.openpgp._algorithms import AES256
from pushprov.openpgp._message import _decrypt_session_key, rsa_decrypt_mpi
from pushprov.openpgp._packets import checksum16, mpi
from pushprov.openpgp._rsa import SoftwareRsaKey, encrypt_block, verify_digest

from .conftest import T0

AES_ONLY = GOOGLE_PROFILE.ciphers


def _load(vectors: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "wycheproof" / "testvectors_v1" / name).read_text()
    )
    return data


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_wycheproof_pkcs1_decrypt_through_the_pkesk_rsa_step(vectors: Path, bits: int) -> None:
    data = _load(vectors, f"rsa_pkcs1_{bits}_test.json")
    valid_ok = invalid_rejected = 0
    for index, group in enumerate(data["testGroups"]):
        private = serialization.load_der_private_key(bytes.fromhex(group["privateKeyPkcs8"]), None)
        assert isinstance(private, rsa.RSAPrivateKey)
        backend = SoftwareRsaKey(private)
        size = (private.key_size + 7) // 8
        if index == 0:
            _session_key_checks_decide(backend)
        for test in group["tests"]:
            ciphertext = bytes.fromhex(test["ct"])
            # As an MPI the ciphertext loses its leading zeros; our reader must pad them back.
            # Ciphertexts longer than the modulus are carried as-is (a non-canonical MPI).
            if len(ciphertext) <= size:
                carried = mpi(ciphertext)
            else:
                carried = (len(ciphertext) * 8).to_bytes(2, "big") + ciphertext
            result = rsa_decrypt_mpi(backend, carried)
            if test["result"] == "valid":
                assert result == bytes.fromhex(test["msg"]), test["tcId"]
                valid_ok += 1
            else:
                # Refused outright, or (implicit rejection) unrelated bytes that the session-key
                # checks refuse (_session_key_checks_decide shows they can): no PKESK result.
                assert result is None or result != bytes.fromhex(test["msg"]), test["tcId"]
                assert _decrypt_session_key(backend, carried, AES_ONLY) is None, test["tcId"]
                invalid_rejected += 1
    print(f"wycheproof rsa_pkcs1_{bits}: {valid_ok} valid ok, {invalid_rejected} invalid rejected")
    assert valid_ok > 0 and invalid_rejected > 0


def _session_key_checks_decide(backend: SoftwareRsaKey) -> None:
    """What the RSA step returns becomes a session key only if it is shaped like one: a real
    session block passes, and one changed octet (checksum, cipher, length) is refused."""
    session_key = bytes(range(32))
    block = bytes([9]) + session_key + checksum16(session_key)

    def pkesk_value(data: bytes) -> bytes:
        return mpi(encrypt_block(backend.public_key, data))

    assert _decrypt_session_key(backend, pkesk_value(block), AES_ONLY) == (AES256, session_key)
    for bad in (block[:-1] + bytes([block[-1] ^ 1]), bytes([10]) + block[1:], block + b"\0"):
        assert _decrypt_session_key(backend, pkesk_value(bad), AES_ONLY) is None


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_wycheproof_sha384_signatures_through_our_verifier(vectors: Path, bits: int) -> None:
    data = _load(vectors, f"rsa_signature_{bits}_sha384_test.json")
    counts = {"valid": 0, "invalid": 0, "acceptable": 0}
    for group in data["testGroups"]:
        public = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        assert isinstance(public, rsa.RSAPublicKey)
        for test in group["tests"]:
            digest = hashlib.sha384(bytes.fromhex(test["msg"])).digest()
            verdict = verify_digest(public, 9, digest, bytes.fromhex(test["sig"]))
            if test["result"] == "valid":
                assert verdict, test["tcId"]
            elif test["result"] == "invalid":
                assert not verdict, test["tcId"]
            counts[test["result"]] += 1
    print(f"wycheproof rsa_signature_{bits}_sha384: {counts}")
    assert counts["valid"] > 0 and counts["invalid"] > 0


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_wycheproof_sha384_signature_generation_is_byte_exact(vectors: Path, bits: int) -> None:
    data = _load(vectors, f"rsa_pkcs1_{bits}_sig_gen_test.json")
    checked = 0
    for group in data["testGroups"]:
        if group["sha"] != "SHA-384":
            continue
        private = serialization.load_der_private_key(bytes.fromhex(group["privateKeyPkcs8"]), None)
        assert isinstance(private, rsa.RSAPrivateKey)
        signer = SoftwareRsaKey(private)
        for test in group["tests"]:
            digest = hashlib.sha384(bytes.fromhex(test["msg"])).digest()
            assert signer.sign_digest(9, digest) == bytes.fromhex(test["sig"]), test["tcId"]
            checked += 1
    print(f"wycheproof rsa_pkcs1_{bits}_sig_gen SHA-384: {checked} byte-exact")
    assert checked > 0


def test_bob_key_and_message_from_draft_bre(vectors: Path) -> None:
    folder = vectors / "draft-bre-openpgp-samples"
    bob = openpgp.read_secret_keys((folder / "bob.sec.asc").read_bytes())[0]
    bob_public = openpgp.read_certificates((folder / "bob.pub.asc").read_bytes())[0]
    assert bob.certificate == bob_public
    assert bob_public.fingerprint == "D1A66E1A23B182C9980F788CFBFCC82A015E7330"
    infos = bob.key_infos()
    assert [(info.bits, info.capabilities, info.has_secret) for info in infos] == [
        (3072, "cs", True),
        (3072, "e", True),
    ]
    message = (folder / "msg-to-bob-signed-by-bob.asc").read_bytes()
    at = T0  # Bob's key never expires; the message was signed in 2024
    opened = openpgp.open_message(message, decrypt_with=[bob], verify_with=[bob_public], at=at)
    assert opened.signers == (bob_public.fingerprint,)
    assert opened.plaintext == b"Hello World :)"
    assert opened.signatures[0].hash_algorithm == "SHA512"
    # Our own seal to Bob opens with Bob's key too.
    ours = openpgp.seal(b"x", sign_with=[bob], encrypt_to=[bob_public], at=at)
    opened = openpgp.open_message(ours, decrypt_with=[bob], verify_with=[bob_public], at=at)
    assert opened.plaintext == b"x"


RFC9580_EXPECTED: dict[str, type[PushprovError]] = {
    "A.1-v4-ed25519legacy-key.pub.asc": UnsupportedError,
    "A.3-v6-certificate.pub.asc": UnsupportedError,
    "A.4-v6-secret-key.sec.asc": UnsupportedError,
    "A.5-v6-secret-key-locked-argon2-aead.sec.asc": UnsupportedError,
}


@pytest.mark.parametrize("name", sorted(RFC9580_EXPECTED))
def test_rfc9580_keys_are_refused_clearly(vectors: Path, name: str) -> None:
    data = (vectors / "rfc9580-appendix-a" / name).read_bytes()
    with pytest.raises(RFC9580_EXPECTED[name]):
        openpgp.read_certificates(data)


RFC9580_MESSAGES: dict[str, type[PushprovError]] = {
    "A.6-cleartext-signed.asc": PolicyViolationError,
    "A.7-inline-signed.asc": PolicyViolationError,
    "A.8.5-x25519-aead-ocb-encrypted.asc": UnsupportedError,
    "A.9.5-aead-eax-skesk-password.asc": UnsupportedError,
    "A.10.5-aead-ocb-skesk-password.asc": UnsupportedError,
    "A.11.5-aead-gcm-skesk-password.asc": UnsupportedError,
    "A.12.1-argon2-aes128-seipdv1.asc": UnsupportedError,
    "A.12.2-argon2-aes192-seipdv1.asc": UnsupportedError,
    "A.12.3-argon2-aes256-seipdv1.asc": UnsupportedError,
    "A.2-v4-ed25519legacy-signature-over-OpenPGP.sig.asc": MalformedInputError,
}


@pytest.mark.parametrize("name", sorted(RFC9580_MESSAGES))
def test_rfc9580_messages_are_refused_clearly(vectors: Path, name: str, keys: Any) -> None:
    data = (vectors / "rfc9580-appendix-a" / name).read_bytes()
    with pytest.raises(RFC9580_MESSAGES[name]) as info:
        openpgp.open_message(
            data,
            decrypt_with=[keys.google_1],
            verify_with=[keys.issuer_a.certificate],
            at=T0,
        )
    assert not isinstance(info.value, DecryptionFailedError)


def test_all_rfc9580_files_are_covered(vectors: Path) -> None:
    names = {p.name for p in (vectors / "rfc9580-appendix-a").iterdir()}
    assert names - {"A.2-signed-data.txt", "README.md"} == set(RFC9580_EXPECTED) | set(
        RFC9580_MESSAGES
    )


def test_key_file_that_is_not_a_key(vectors: Path) -> None:
    with pytest.raises(KeyInvalidError):
        openpgp.read_certificates(b"hello")
    with pytest.raises(KeyInvalidError):
        openpgp.read_certificates(
            (vectors / "draft-bre-openpgp-samples" / "msg-to-bob-signed-by-bob.asc").read_bytes()
        )
