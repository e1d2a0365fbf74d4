"""Signatures without encryption (openpgp._detached) and standalone armor (openpgp._armor)."""

from __future__ import annotations

import pytest

from pushprov import (
    GOOGLE_PROFILE,
    Encoding,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
    UsageError,
    openpgp,
)
from pushprov.openpgp._message import signed_literal

from . import craft
from .conftest import PAYLOAD, T0, Keys


def test_detached_signatures_verify_by_each_signer(keys: Keys) -> None:
    signature = openpgp.sign_detached(PAYLOAD, sign_with=[keys.issuer_a, keys.issuer_b], at=T0)
    assert [tag for tag, _ in craft.packets(signature)] == [2, 2]
    verified = openpgp.verify_detached(
        PAYLOAD, signature, verify_with=[keys.issuer_a.certificate, keys.issuer_b.certificate],
        at=T0,
    )  # fmt: skip
    assert [v.certificate for v in verified] == [
        keys.issuer_a.fingerprint,
        keys.issuer_b.fingerprint,
    ]
    assert {v.hash_algorithm for v in verified} == {"SHA384"}
    armored = openpgp.armor_data(signature)
    assert openpgp.verify_detached(PAYLOAD, armored, verify_with=[keys.issuer_b.certificate], at=T0)


def test_detached_signature_refusals(keys: Keys) -> None:
    signature = openpgp.sign_detached(PAYLOAD, sign_with=[keys.issuer_a], at=T0)
    with pytest.raises(SignatureInvalidError):
        openpgp.verify_detached(
            PAYLOAD + b" ", signature, verify_with=[keys.issuer_a.certificate], at=T0
        )
    with pytest.raises(SignatureInvalidError):
        openpgp.verify_detached(PAYLOAD, signature, verify_with=[keys.stranger.certificate], at=T0)
    with pytest.raises(MalformedInputError):
        openpgp.verify_detached(PAYLOAD, openpgp.armor_data(keys.issuer_a.certificate.to_bytes()),
                                verify_with=[keys.issuer_a.certificate], at=T0)  # fmt: skip
    with pytest.raises(UsageError):
        openpgp.sign_detached(PAYLOAD, sign_with=[], at=T0)


def test_text_signature_hashes_crlf(keys: Keys) -> None:
    signature = openpgp.sign_detached(b"a\nb\n", sign_with=[keys.issuer_a], at=T0, text=True)
    assert craft.packets(signature)[0][1][1] == 0x01  # signature type: text
    cert = keys.issuer_a.certificate
    assert openpgp.verify_detached(b"a\r\nb\r\n", signature, verify_with=[cert], at=T0)


def test_inline_signed_message(keys: Keys) -> None:
    message = openpgp.sign_inline(PAYLOAD, sign_with=[keys.issuer_a, keys.issuer_b], at=T0)
    assert [tag for tag, _ in craft.packets(message)] == [4, 4, 11, 2, 2]
    data, verified = openpgp.verify_inline(
        openpgp.encode_message(message, Encoding.ARMOR), verify_with=[keys.issuer_b.certificate],
        at=T0,
    )  # fmt: skip
    assert data == PAYLOAD
    assert [v.certificate for v in verified] == [keys.issuer_b.fingerprint]
    # Compressed, as other implementations write it.
    data, _ = openpgp.verify_inline(craft.compressed(message, 2),
                                    verify_with=[keys.issuer_a.certificate], at=T0)  # fmt: skip
    assert data == PAYLOAD


def test_inline_refusals(keys: Keys) -> None:
    signer = keys.issuer_a.signer(GOOGLE_PROFILE, T0)
    sha1 = signed_literal(PAYLOAD, [signer], created=int(T0.timestamp()), hash_algo=2)
    with pytest.raises(PolicyViolationError, match="SHA1"):
        openpgp.verify_inline(sha1, verify_with=[keys.issuer_a.certificate], at=T0)
    sealed = openpgp.seal(
        PAYLOAD, sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
    )
    with pytest.raises(MalformedInputError):
        openpgp.verify_inline(sealed, verify_with=[keys.issuer_a.certificate], at=T0)
    with pytest.raises(SignatureInvalidError):
        openpgp.verify_inline(
            craft.literal(PAYLOAD), verify_with=[keys.issuer_a.certificate], at=T0
        )


def test_armor_labels_follow_the_first_packet(keys: Keys) -> None:
    cert = keys.issuer_a.certificate.to_bytes()
    assert openpgp.armor_data(cert).startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    message = openpgp.sign_inline(PAYLOAD, sign_with=[keys.issuer_a], at=T0)
    assert openpgp.armor_data(message).startswith(b"-----BEGIN PGP MESSAGE-----")
    assert openpgp.dearmor_data(openpgp.armor_data(message)) == message
    with pytest.raises(MalformedInputError):
        openpgp.armor_data(cert[:-5])  # truncated: not OpenPGP all the way


def test_cleartext_round_trip_and_dash_escaping(keys: Keys) -> None:
    text = "-- a dash line\r\nplain  \n\nend\n"
    message = openpgp.sign_cleartext(text, sign_with=[keys.issuer_a], at=T0)
    lines = message.decode().split("\n")
    assert lines[:6] == ["-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA384", "",
                         "- -- a dash line", "plain", ""]  # fmt: skip
    data, verified = openpgp.verify_cleartext(
        message, verify_with=[keys.issuer_a.certificate], at=T0
    )
    # The signed text: trailing whitespace dropped, LF line endings, the final newline kept.
    assert data == b"-- a dash line\nplain\n\nend\n"
    assert [v.certificate for v in verified] == [keys.issuer_a.fingerprint]
    # Whitespace at line ends does not count (RFC 9580 §7.2); a changed word does.
    padded = message.replace(b"\nplain\n", b"\nplain \t\n")
    assert openpgp.verify_cleartext(padded, verify_with=[keys.issuer_a.certificate], at=T0)
    with pytest.raises(SignatureInvalidError):
        openpgp.verify_cleartext(message.replace(b"end", b"End"),
                                 verify_with=[keys.issuer_a.certificate], at=T0)  # fmt: skip


def test_cleartext_refusals(keys: Keys) -> None:
    cert = keys.issuer_a.certificate
    binary_sig = openpgp.armor_data(openpgp.sign_detached(b"x", sign_with=[keys.issuer_a], at=T0))
    forged = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA384\n\nx\n" + binary_sig
    with pytest.raises(MalformedInputError, match="non-text signature"):
        openpgp.verify_cleartext(forged, verify_with=[cert], at=T0)
    with pytest.raises(MalformedInputError, match="without its signature"):
        openpgp.verify_cleartext(b"-----BEGIN PGP SIGNED MESSAGE-----\n\nx\n",
                                 verify_with=[cert], at=T0)  # fmt: skip
    with pytest.raises(MalformedInputError, match="not a cleartext"):
        openpgp.verify_cleartext(b"hello", verify_with=[cert], at=T0)
