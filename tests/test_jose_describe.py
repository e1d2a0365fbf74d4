"""describe_jwe: what a compact JWE names before any key is used."""

from __future__ import annotations

import pytest

from pushprov import jose
from pushprov._errors import InputTooLargeError, MalformedInputError, PolicyViolationError

from .jose_support import NOW, fixed_key, forge_jwe


def test_describe_names_the_recipient_key_and_algorithms() -> None:
    signer, recipient = fixed_key("describe-sig"), fixed_key("describe-enc")
    token = jose.seal_jwe(b"probe", sign_with=signer, encrypt_to=recipient.public(), at=NOW)
    info = jose.describe_jwe(token)
    assert info == jose.JweInfo(
        alg="RSA-OAEP-256", enc="A256GCM", kid="describe-enc", encrypted_key_bytes=256
    )
    assert jose.describe_jwe(token.decode("ascii") + "\n") == info


def test_describe_reads_the_envelope_as_open_jwe_does() -> None:
    with pytest.raises(MalformedInputError, match="5 segments"):
        jose.describe_jwe(b"a.b.c")
    with pytest.raises(InputTooLargeError):
        jose.describe_jwe(b"a" * (200 * 1024))
    recipient = fixed_key("describe-enc")
    key_source = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "jku": "https://x.example"}
    with pytest.raises(PolicyViolationError, match="key source"):
        jose.describe_jwe(forge_jwe(key_source, b"x", recipient))
    with pytest.raises(MalformedInputError, match='"enc"'):
        jose.describe_jwe(forge_jwe({"alg": "RSA-OAEP-256"}, b"x", recipient))
