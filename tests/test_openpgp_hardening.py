"""Hostile and edge inputs (several found in review): each case pins one rule of the open path
or of key loading."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushprov import (
    GOOGLE_PROFILE,
    DecryptionFailedError,
    KeyInvalidError,
    Opened,
    PushprovError,
    SignatureInvalidError,
    openpgp,
)
from pushprov._clock import as_unix
from pushprov.openpgp._algorithms import new_hash
from pushprov.openpgp._cert import ComponentKey, public_body
from pushprov.openpgp._packets import (
    FramingError,
    Tag,
    encode_length,
    encode_packet,
    read_length,
    read_packets,
)
from pushprov.openpgp._signature import KeyFlags, SigType, Sub, encode_subpackets, make_signature

from . import craft
from .conftest import PAYLOAD, T0, Keys


def _open(keys: Keys, message: bytes, at: dt.datetime = T0, **kwargs: object) -> Opened:
    options: dict[str, object] = {
        "decrypt_with": [keys.google_1],
        "verify_with": [keys.issuer_a.certificate],
        "at": at,
    }
    options.update(kwargs)
    return openpgp.open_message(message, **options)  # type: ignore[arg-type]


def test_hostile_armor_is_parsed_in_linear_time() -> None:
    # Quadratic armor parsing turned this 1 MiB key file into hours of CPU; linear, it is instant.
    hostile = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + b" \n" * (512 * 1024 - 40) + b"!"
    with pytest.raises(KeyInvalidError):
        openpgp.read_certificates(hostile)
    repeated = b"-----BEGIN PGP MESSAGE-----\n" * 2000
    with pytest.raises(PushprovError):
        openpgp.decode_message(repeated)


def test_signer_key_not_yet_valid_is_refused_on_open(keys: Keys) -> None:
    later = T0 + dt.timedelta(days=30)
    young = openpgp.generate_key("Young <y@x.example>", bits=2048, at=later)
    message = openpgp.seal(
        PAYLOAD, sign_with=[young], encrypt_to=[keys.google_1.certificate], at=later
    )
    # Within the clock skew of the signature, but before the key existed.
    just_before = later - dt.timedelta(seconds=30)
    with pytest.raises(SignatureInvalidError, match="not valid yet"):
        _open(keys, message, at=just_before, verify_with=[young.certificate])
    assert _open(keys, message, at=later, verify_with=[young.certificate]).plaintext == PAYLOAD


def test_signature_older_than_its_key_is_refused(keys: Keys) -> None:
    later = T0 + dt.timedelta(days=30)
    young = openpgp.generate_key("Young <y@x.example>", bits=2048, at=later)
    key, backend = young.signer(GOOGLE_PROFILE, later)
    hasher = new_hash(9)
    hasher.update(PAYLOAD)
    signature = make_signature(
        backend, fingerprint=key.fingerprint, sig_type=SigType.BINARY, hash_algo=9,
        data_hash=hasher, created=as_unix(T0),  # backdated before the key's creation
    )  # fmt: skip
    inner = encode_packet(Tag.SIGNATURE, signature) + craft.literal(PAYLOAD)  # prefix signature
    message = craft.encrypt_packets(inner, [keys.google_1.certificate])
    with pytest.raises(SignatureInvalidError, match="older than its key"):
        _open(keys, message, at=later + dt.timedelta(days=1), verify_with=[young.certificate])


def _with_small_encryption_subkey(key: openpgp.SecretKey, bits: int) -> bytes:
    primary = key.certificate._primary
    primary_ops = key._backends[primary.fingerprint]
    small = rsa.generate_private_key(65537, bits)
    sub = ComponentKey(public_body(as_unix(T0) + 60, small.public_key()))
    hasher = new_hash(10)
    hasher.update(primary.hash_prefix() + sub.hash_prefix())
    binding = make_signature(
        primary_ops, fingerprint=primary.fingerprint, sig_type=SigType.SUBKEY_BINDING,
        hash_algo=10, data_hash=hasher, created=as_unix(T0) + 60,
        subpackets=[(Sub.KEY_FLAGS, bytes([KeyFlags.ENCRYPT]))],
    )  # fmt: skip
    return (
        key.certificate.to_bytes()
        + encode_packet(Tag.PUBLIC_SUBKEY, sub.body)
        + encode_packet(Tag.SIGNATURE, binding)
    )


def test_undersized_subkeys_are_never_used(keys: Keys) -> None:
    data = _with_small_encryption_subkey(keys.google_2, 1024)
    strict = openpgp.read_certificates(data)[0]
    assert [info.bits for info in strict.key_infos()] == [2048, 2048]  # the 1024-bit one dropped
    lax_policy = dataclasses.replace(GOOGLE_PROFILE, min_rsa_bits=1024)
    lax = openpgp.read_certificates(data, policy=lax_policy)[0]
    newest = lax.encryption_key(lax_policy, T0 + dt.timedelta(hours=1))
    assert newest.bits == 1024  # newest wins where the policy allows it...
    # ...but sealing under Google's profile skips it for the older, big enough subkey.
    assert lax.encryption_key(GOOGLE_PROFILE, T0 + dt.timedelta(hours=1)).bits == 2048


def test_truncated_s2k_is_a_key_error_not_a_crash(keys: Keys) -> None:
    body = keys.issuer_a.certificate._primary.body
    for tail in (
        b"\xfe",
        b"\xfe\x09",
        b"\xfe\x09\x03",
        b"\xfe\x09\x03\x08",
        b"\xfe\x09\x03\x08" + bytes(9),
    ):
        with pytest.raises(KeyInvalidError):
            openpgp.read_secret_keys(encode_packet(Tag.SECRET_KEY, body + tail), passphrase=b"x")
    with pytest.raises(KeyInvalidError):
        openpgp.read_secret_keys(encode_packet(Tag.SECRET_KEY, body + b"\x00\x01"))


@pytest.mark.parametrize("damage", ["garbage after the stream", "zlib without its checksum"])
def test_compressed_data_must_end_with_the_packet(keys: Keys, damage: str) -> None:
    inner = craft.inner_packets(
        openpgp.seal(
            PAYLOAD, sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
        ),
        keys.google_1,
    )
    if damage == "garbage after the stream":
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = b"\x01" + deflater.compress(inner) + deflater.flush() + b"GARBAGE"
    else:
        body = b"\x02" + zlib.compress(inner)[:-4]
    message = craft.encrypt_packets(
        encode_packet(Tag.COMPRESSED, body), [keys.google_1.certificate]
    )
    with pytest.raises(DecryptionFailedError):
        _open(keys, message)


def test_critical_unknown_subpacket_in_the_unhashed_area_invalidates(keys: Keys) -> None:
    sealed = openpgp.seal(
        PAYLOAD, sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
    )
    packets = craft.packets(craft.inner_packets(sealed, keys.google_1))
    sig = packets[-1][1]
    hashed_len = int.from_bytes(sig[4:6], "big")
    pos = 6 + hashed_len
    unhashed_len = int.from_bytes(sig[pos : pos + 2], "big")
    unhashed = sig[pos + 2 : pos + 2 + unhashed_len] + encode_subpackets([(0x80 | 100, b"x")])
    tampered = (
        sig[:pos] + len(unhashed).to_bytes(2, "big") + unhashed + sig[pos + 2 + unhashed_len :]
    )
    message = craft.encrypt_packets(
        craft.join([*packets[:-1], (Tag.SIGNATURE, tampered)]), [keys.google_1.certificate]
    )
    with pytest.raises(SignatureInvalidError):
        _open(keys, message)


@pytest.fixture(scope="module")
def inner_by_two(keys: Keys, sealed_by_two: bytes) -> bytes:
    """The signed packets inside ``sealed_by_two``, compressed: decrypted once, not per example."""
    return craft.compressed(craft.inner_packets(sealed_by_two, keys.google_1))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_inner_packets_only_raise_pushprov_errors(
    keys: Keys, inner_by_two: bytes, data: st.DataObject
) -> None:
    """The MDC stops outer mutations; these reach the inner parser (re-encrypted after mutation)."""
    inner = bytearray(inner_by_two)
    for _ in range(data.draw(st.integers(1, 3))):
        inner[data.draw(st.integers(0, len(inner) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(inner)))
    message = craft.encrypt_packets(bytes(inner[:cut]), [keys.google_1.certificate])
    try:
        opened = _open(
            keys, message, verify_with=[keys.issuer_a.certificate, keys.issuer_b.certificate]
        )
    except PushprovError:
        return
    assert opened.plaintext == PAYLOAD  # a mutation that still verifies changed no signed data


@pytest.mark.parametrize("length", [0, 191, 192, 8383, 8384, 65535, 2**32 - 1])
def test_one_length_codec_for_packets_and_subpackets(length: int) -> None:
    encoded = encode_length(length)
    assert len(encoded) == (1 if length < 192 else 2 if length < 8384 else 5)
    assert read_length(encoded + b"rest", 0) == (length, len(encoded))
    with pytest.raises(FramingError):
        read_length(encoded[:-1], 0)  # a truncated length is a framing error, never a crash
    if length <= 8384:
        # A packet body round-trips through the header the same codec writes.
        assert list(read_packets(encode_packet(Tag.LITERAL, bytes(length)))) == [
            (Tag.LITERAL, bytes(length))
        ]


def test_trailing_data_in_a_public_key_packet_is_refused(keys: Keys) -> None:
    """Nothing may follow the exponent: a parser that ignored it would fingerprint (and export)
    other bytes than the ones it was given."""
    packets = list(read_packets(keys.issuer_a.certificate.to_bytes()))
    assert packets[0][0] == Tag.PUBLIC_KEY
    for index in (0, next(i for i, (tag, _) in enumerate(packets) if tag == Tag.PUBLIC_SUBKEY)):
        tampered = [
            (tag, body + b"\x00junk" if position == index else body)
            for position, (tag, body) in enumerate(packets)
        ]
        data = b"".join(encode_packet(tag, body) for tag, body in tampered)
        with pytest.raises(KeyInvalidError):
            openpgp.read_certificates(data)
