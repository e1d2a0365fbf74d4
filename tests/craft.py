"""Builders for hostile or unusual messages that no well-behaved sealer writes.

They use the engine's own packet primitives, so each test states exactly which bytes differ from
a good message.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher

from pushprov import GOOGLE_PROFILE, openpgp
from pushprov.openpgp import SecretKey
from pushprov.openpgp._algorithms import CFB, cipher_spec
from pushprov.openpgp._message import _decrypt, _split_envelope
from pushprov.openpgp._packets import Tag, encode_packet, mpi, read_packets
from pushprov.openpgp._rsa import encrypt_block

from .conftest import T0


def encrypt_packets(
    inner: bytes,
    recipients: Sequence[openpgp.Certificate],
    *,
    cipher_algo: int = 9,
    mdc: bool = True,
    key_id: bytes | None = None,
) -> bytes:
    """PKESKs + SEIPD v1 (or SED when ``mdc`` is False) around arbitrary inner packets."""
    spec = cipher_spec(cipher_algo)
    assert spec is not None
    session_key = os.urandom(spec.key_size)
    block = bytes([cipher_algo]) + session_key + (sum(session_key) & 0xFFFF).to_bytes(2, "big")
    out = []
    for cert in recipients:
        key = cert.encryption_key(GOOGLE_PROFILE, T0)
        assert key.public is not None
        kid = key.key_id if key_id is None else key_id
        out.append(
            encode_packet(
                Tag.PKESK, b"\x03" + kid + b"\x01" + mpi(encrypt_block(key.public, block))
            )
        )
    prefix = os.urandom(spec.block_size)
    clear = prefix + prefix[-2:] + inner
    if mdc:
        clear += b"\xd3\x14"
        clear += hashlib.sha1(clear).digest()
        encryptor = Cipher(spec.factory(session_key), CFB(bytes(spec.block_size))).encryptor()
        body = b"\x01" + encryptor.update(clear) + encryptor.finalize()
        out.append(encode_packet(Tag.SEIPD, body))
    else:
        encryptor = Cipher(spec.factory(session_key), CFB(bytes(spec.block_size))).encryptor()
        out.append(encode_packet(Tag.SED, encryptor.update(clear) + encryptor.finalize()))
    return b"".join(out)


def inner_packets(message: bytes, key: SecretKey) -> bytes:
    """The decrypted inner packets of one of our messages (to re-wrap or re-arrange them)."""
    pkesks, seipd = _split_envelope(message)
    decrypted = _decrypt(pkesks, seipd, [key])
    assert decrypted is not None
    return decrypted[2]


def packets(data: bytes) -> list[tuple[int, bytes]]:
    return list(read_packets(data))


def join(items: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_packet(tag, body) for tag, body in items)


def literal(data: bytes) -> bytes:
    return encode_packet(Tag.LITERAL, b"b\x00" + (0).to_bytes(4, "big") + data)


def compressed(inner: bytes, algorithm: int = 1) -> bytes:
    if algorithm == 1:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = deflater.compress(inner) + deflater.flush()
    else:
        data = zlib.compress(inner, 9)
    return encode_packet(Tag.COMPRESSED, bytes([algorithm]) + data)
