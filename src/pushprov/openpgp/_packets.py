"""OpenPGP packet framing (RFC 9580 §4.2), MPIs (§3.2) and ASCII armor (§6).

Reads old- and new-format headers and partial body lengths; writes new format only. Every read is
bounds-checked; problems raise ``FramingError`` which the callers map to a public error class.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

__all__ = [
    "FramingError",
    "Tag",
    "armor",
    "checksum16",
    "dearmor",
    "encode_length",
    "encode_packet",
    "is_armored",
    "mpi",
    "read_length",
    "read_mpi",
    "read_packets",
]


class FramingError(Exception):
    """Internal: malformed packet stream. Never shown as is; the caller picks the public error."""


class Tag:
    PKESK = 1
    SIGNATURE = 2
    SKESK = 3
    ONE_PASS_SIGNATURE = 4
    SECRET_KEY = 5
    PUBLIC_KEY = 6
    SECRET_SUBKEY = 7
    COMPRESSED = 8
    SED = 9
    MARKER = 10
    LITERAL = 11
    TRUST = 12
    USER_ID = 13
    PUBLIC_SUBKEY = 14
    USER_ATTRIBUTE = 17
    SEIPD = 18
    MDC = 19
    AEAD = 20
    PADDING = 21


# Only data-carrying packets may use partial body lengths (§4.2.1.4).
_PARTIAL_OK = frozenset({Tag.COMPRESSED, Tag.SED, Tag.LITERAL, Tag.SEIPD, Tag.AEAD})


def read_packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(tag, body)`` for each packet in ``data``; partial bodies are joined."""
    pos = 0
    end = len(data)
    while pos < end:
        first = data[pos]
        if not first & 0x80:
            raise FramingError("not a packet header")
        pos += 1
        if first & 0x40:
            tag = first & 0x3F
            body, pos = _read_new_body(data, pos, tag)
        else:
            tag = (first >> 2) & 0x0F
            length_type = first & 0x03
            if length_type == 3:  # indeterminate: to the end of the data
                body, pos = data[pos:], end
            else:
                size = 1 << length_type
                length = int.from_bytes(_take(data, pos, size), "big")
                pos += size
                body = _take(data, pos, length)
                pos += length
        yield tag, body


def _read_new_body(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    chunks: list[bytes] = []
    first_chunk = True
    while True:
        octet = _take(data, pos, 1)[0]
        if 224 <= octet < 255:  # a partial length (§4.2.1.4): this chunk, then another length
            if tag not in _PARTIAL_OK:
                raise FramingError("partial length on a packet that may not have one")
            length = 1 << (octet & 0x1F)
            if first_chunk and length < 512:
                raise FramingError("first partial chunk shorter than 512 octets")
            chunks.append(_take(data, pos + 1, length))
            pos += 1 + length
            first_chunk = False
            continue
        length, pos = read_length(data, pos)
        chunks.append(_take(data, pos, length))
        return b"".join(chunks), pos + length


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """A one-, two- or five-octet length at ``pos`` (§4.2.1, §5.2.3.1); (length, where next).

    First octets 224..254 read as two-octet lengths, as in subpackets: packet headers take them
    for partial lengths and check for those first.
    """
    octet = _take(data, pos, 1)[0]
    if octet < 192:
        return octet, pos + 1
    if octet < 255:
        return ((octet - 192) << 8) + _take(data, pos + 1, 1)[0] + 192, pos + 2
    return int.from_bytes(_take(data, pos + 1, 4), "big"), pos + 5


def _take(data: bytes, pos: int, length: int) -> bytes:
    if pos + length > len(data):
        raise FramingError("truncated")
    return data[pos : pos + length]


def encode_packet(tag: int, body: bytes) -> bytes:
    """New-format header with the shortest definite length."""
    return bytes([0xC0 | tag]) + encode_length(len(body)) + body


def encode_length(length: int) -> bytes:
    """The shortest one-, two- or five-octet length (packets §4.2.1, subpackets §5.2.3.1)."""
    if length < 192:
        return bytes([length])
    if length < 8384:
        length -= 192
        return bytes([(length >> 8) + 192, length & 0xFF])
    return b"\xff" + length.to_bytes(4, "big")


def checksum16(data: bytes) -> bytes:
    """The sum of the octets mod 65536, two octets (session keys §5.1, secret keys §5.5.3)."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def mpi(value: int | bytes) -> bytes:
    """Encode an MPI: bit count, then the big-endian value without leading zero octets."""
    if isinstance(value, bytes):
        value = int.from_bytes(value, "big")
    bits = value.bit_length()
    return bits.to_bytes(2, "big") + value.to_bytes((bits + 7) // 8, "big")


def read_mpi(data: bytes, pos: int) -> tuple[bytes, int]:
    """Return the MPI's value octets (as written, leading zeros stripped by the writer)."""
    bits = int.from_bytes(_take(data, pos, 2), "big")
    length = (bits + 7) // 8
    return _take(data, pos + 2, length), pos + 2 + length


# ---------------------------------------------------------------------------------------------
# ASCII armor

_BEGIN = re.compile(rb"-----BEGIN PGP ([A-Z ,/0-9]{1,40})-----")
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]*")


def is_armored(data: bytes) -> bool:
    return data.lstrip()[:15] == b"-----BEGIN PGP "


def dearmor(data: bytes) -> tuple[str, bytes]:
    """Return ``(kind, binary)`` of the first armored block, in one pass over the lines.

    The CRC-24 line is optional and, when present, not checked: RFC 9580 §6.1 says a reader must
    not reject on it; integrity comes from the MDC and the signatures.
    """
    lines = iter(data.splitlines())
    kind = _armor_kind(lines)
    _skip_armor_headers(lines)
    body = _armor_body(lines, b"-----END PGP " + kind + b"-----")
    try:
        binary = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise FramingError("bad base64 in armor") from None
    return kind.decode("ascii"), binary


def _armor_kind(lines: Iterator[bytes]) -> bytes:
    """Consume ``lines`` through the first BEGIN line and return its kind."""
    for line in lines:
        match = _BEGIN.fullmatch(line.rstrip())
        if match:
            return match.group(1)
    raise FramingError("no ASCII armor")


def _skip_armor_headers(lines: Iterator[bytes]) -> None:
    """Consume the armor headers ("Key: value"), which end at the first blank line."""
    for line in lines:
        if not line.strip():
            return
        if b":" not in line:
            raise FramingError("bad armor header")
    raise FramingError("truncated armor")


def _armor_body(lines: Iterator[bytes], end: bytes) -> bytes:
    """Consume the base64 lines through ``end`` and return them joined, CRC-24 line left out."""
    body: list[bytes] = []
    for raw in lines:
        line = raw.strip()
        if line == end:
            return b"".join(body)
        if line.startswith(b"=") and len(line) == 5:
            continue  # the CRC-24 line
        if not _BASE64_LINE.fullmatch(line):
            raise FramingError("bad base64 in armor")
        body.append(line)
    raise FramingError("truncated armor")


def armor(kind: str, data: bytes) -> str:
    """Armor ``data`` as ``-----BEGIN PGP {kind}-----`` with 64-column lines and a CRC-24.

    RFC 9580 makes the CRC optional; it is written because older readers require it.
    """
    encoded = base64.b64encode(data).decode("ascii")
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    crc = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode("ascii")
    return "\n".join(
        [f"-----BEGIN PGP {kind}-----", "", *lines, f"={crc}", f"-----END PGP {kind}-----", ""]
    )


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for octet in data:
        crc ^= octet << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF
