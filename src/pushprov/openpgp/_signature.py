"""Version 4 signature packets (RFC 9580 §5.2): parsing, the hashed trailer, building."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes

from ._algorithms import PK_RSA
from ._packets import FramingError, encode_length, mpi, read_length, read_mpi
from ._rsa import PrivateKeyOps

__all__ = [
    "KeyFlags",
    "SigType",
    "Signature",
    "Sub",
    "UnsupportedSignatureError",
    "encode_subpackets",
    "make_signature",
    "parse_signature",
    "signature_trailer",
]


class SigType:
    BINARY = 0x00
    TEXT = 0x01
    GENERIC_CERT = 0x10
    PERSONA_CERT = 0x11
    CASUAL_CERT = 0x12
    POSITIVE_CERT = 0x13
    SUBKEY_BINDING = 0x18
    PRIMARY_KEY_BINDING = 0x19
    DIRECT_KEY = 0x1F
    KEY_REVOCATION = 0x20
    SUBKEY_REVOCATION = 0x28
    CERT_REVOCATION = 0x30


CERTIFICATIONS = frozenset({0x10, 0x11, 0x12, 0x13})


class KeyFlags:
    CERTIFY = 0x01
    SIGN = 0x02
    ENCRYPT_COMMS = 0x04
    ENCRYPT_STORAGE = 0x08
    ENCRYPT = ENCRYPT_COMMS | ENCRYPT_STORAGE


class Sub:
    CREATION_TIME = 2
    SIG_EXPIRATION = 3
    EXPORTABLE = 4
    REVOCABLE = 7
    KEY_EXPIRATION = 9
    PREFERRED_CIPHERS = 11
    ISSUER_KEY_ID = 16
    NOTATION = 20
    PREFERRED_HASHES = 21
    PREFERRED_COMPRESSION = 22
    KEYSERVER_PREFS = 23
    PRIMARY_USER_ID = 25
    KEY_FLAGS = 27
    SIGNERS_USER_ID = 28
    REVOCATION_REASON = 29
    FEATURES = 30
    EMBEDDED_SIGNATURE = 32
    ISSUER_FINGERPRINT = 33


# Subpackets we understand: a critical one outside this set, in either area, makes the signature
# invalid (§5.2.3.7). Notations (20) are not interpreted here, so a critical one is unknown too.
_KNOWN = frozenset(
    {2, 3, 4, 5, 7, 9, 11, 12, 16, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35}
)


@dataclasses.dataclass(frozen=True)
class Signature:
    """A parsed v4 signature. Only hashed subpackets are trusted for anything but issuer hints."""

    sig_type: int
    pk_algo: int
    hash_algo: int
    hashed_area: bytes
    left16: bytes
    value: bytes  # the RSA signature MPI's octets, leading zeros stripped
    created: int | None
    sig_expiration: int | None
    key_expiration: int | None
    key_flags: int | None
    issuer_key_ids: tuple[bytes, ...]  # hashed or unhashed; a search hint only
    issuer_fingerprints: tuple[bytes, ...]
    embedded: tuple[bytes, ...]  # bodies of embedded signatures (hashed or unhashed)
    revocation_reason: int | None
    critical_unknown: bool

    def trailer(self) -> bytes:
        """What follows the signed data in the hash (§5.2.4)."""
        return signature_trailer(self.sig_type, self.pk_algo, self.hash_algo, self.hashed_area)


def parse_signature(body: bytes) -> Signature:
    if not body:
        raise FramingError("empty signature")
    if body[0] != 4:
        raise UnsupportedSignatureError(body[0])
    if len(body) < 6:
        raise FramingError("truncated signature")
    sig_type, pk_algo, hash_algo = body[1], body[2], body[3]
    hashed_len = int.from_bytes(body[4:6], "big")
    hashed_area = body[6 : 6 + hashed_len]
    pos = 6 + hashed_len
    if len(hashed_area) != hashed_len or pos + 2 > len(body):
        raise FramingError("truncated signature")
    unhashed_len = int.from_bytes(body[pos : pos + 2], "big")
    unhashed_area = body[pos + 2 : pos + 2 + unhashed_len]
    pos += 2 + unhashed_len
    if len(unhashed_area) != unhashed_len or pos + 2 > len(body):
        raise FramingError("truncated signature")
    left16 = body[pos : pos + 2]
    value, end = read_mpi(body, pos + 2)
    if end != len(body):
        # Only RSA (one MPI) is in our profile; other algorithms get here and are refused later.
        value = body[pos + 2 :]

    fields: dict[int, list[bytes]] = {}
    critical_unknown = False
    for sub_type, critical, data in _subpackets(hashed_area):
        fields.setdefault(sub_type, []).append(data)
        if critical and sub_type not in _KNOWN:
            critical_unknown = True
    unhashed: dict[int, list[bytes]] = {}
    for sub_type, critical, data in _subpackets(unhashed_area):
        unhashed.setdefault(sub_type, []).append(data)
        if critical and sub_type not in _KNOWN:
            critical_unknown = True

    def one_int(sub_type: int, size: int) -> int | None:
        values = fields.get(sub_type)
        if not values:
            return None
        if len(values[-1]) != size:
            raise FramingError("bad subpacket size")
        return int.from_bytes(values[-1], "big")

    key_flags = None
    if fields.get(Sub.KEY_FLAGS):
        flags = fields[Sub.KEY_FLAGS][-1]
        key_flags = flags[0] if flags else 0
    reason = None
    if fields.get(Sub.REVOCATION_REASON):
        reason_data = fields[Sub.REVOCATION_REASON][-1]
        reason = reason_data[0] if reason_data else 0
    key_ids = fields.get(Sub.ISSUER_KEY_ID, []) + unhashed.get(Sub.ISSUER_KEY_ID, [])
    fprs = fields.get(Sub.ISSUER_FINGERPRINT, []) + unhashed.get(Sub.ISSUER_FINGERPRINT, [])
    return Signature(
        sig_type=sig_type,
        pk_algo=pk_algo,
        hash_algo=hash_algo,
        hashed_area=hashed_area,
        left16=left16,
        value=value,
        created=one_int(Sub.CREATION_TIME, 4),
        sig_expiration=one_int(Sub.SIG_EXPIRATION, 4),
        key_expiration=one_int(Sub.KEY_EXPIRATION, 4),
        key_flags=key_flags,
        issuer_key_ids=tuple(k for k in key_ids if len(k) == 8),
        # v4 issuer fingerprint subpacket: version octet 4, then 20 octets.
        issuer_fingerprints=tuple(f[1:] for f in fprs if len(f) == 21 and f[0] == 4),
        embedded=tuple(
            fields.get(Sub.EMBEDDED_SIGNATURE, []) + unhashed.get(Sub.EMBEDDED_SIGNATURE, [])
        ),
        revocation_reason=reason,
        critical_unknown=critical_unknown,
    )


class UnsupportedSignatureError(FramingError):
    """A signature packet of another version than 4 (v3 legacy or v6)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"signature version {version}")
        self.version = version


def _subpackets(area: bytes) -> list[tuple[int, bool, bytes]]:
    result = []
    pos = 0
    while pos < len(area):
        length, pos = read_length(area, pos)
        if length == 0 or pos + length > len(area):
            raise FramingError("bad subpacket length")
        type_octet = area[pos]
        result.append((type_octet & 0x7F, bool(type_octet & 0x80), area[pos + 1 : pos + length]))
        pos += length
    return result


def encode_subpackets(items: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for sub_type, data in items:
        out += encode_length(len(data) + 1)
        out.append(sub_type)
        out += data
    return bytes(out)


def make_signature(
    signer: PrivateKeyOps,
    *,
    fingerprint: bytes,
    sig_type: int,
    hash_algo: int,
    data_hash: hashes.Hash,
    created: int,
    subpackets: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """A v4 RSA signature packet body over what ``data_hash`` has absorbed (it is finalized).

    The hashed area always carries the creation time and the issuer fingerprint (RFC 9580
    §5.2.3.35); the unhashed area the issuer key ID for older readers.
    """
    hashed = encode_subpackets(
        [
            (Sub.CREATION_TIME, created.to_bytes(4, "big")),
            (Sub.ISSUER_FINGERPRINT, b"\x04" + fingerprint),
            *subpackets,
        ]
    )
    unhashed = encode_subpackets([(Sub.ISSUER_KEY_ID, fingerprint[-8:])])
    data_hash.update(signature_trailer(sig_type, PK_RSA, hash_algo, hashed))
    digest = data_hash.finalize()
    return (
        bytes([4, sig_type, PK_RSA, hash_algo])
        + len(hashed).to_bytes(2, "big")
        + hashed
        + len(unhashed).to_bytes(2, "big")
        + unhashed
        + digest[:2]
        + mpi(signer.sign_digest(hash_algo, digest))
    )


def signature_trailer(sig_type: int, pk_algo: int, hash_algo: int, hashed_area: bytes) -> bytes:
    head = bytes([4, sig_type, pk_algo, hash_algo]) + len(hashed_area).to_bytes(2, "big")
    head += hashed_area
    return head + b"\x04\xff" + len(head).to_bytes(4, "big")
