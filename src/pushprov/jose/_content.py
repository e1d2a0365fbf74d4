"""Content encryption (RFC 7518 §5) through joserfc's models, and DEFLATE with a hard cap."""

from __future__ import annotations

import functools
import zlib

from joserfc.errors import JoseError
from joserfc.jwa import JWEEncModel
from joserfc.jwe import JWERegistry

from .._errors import DecryptionFailedError, InputTooLargeError
from .._policy import JWE_ENCS

__all__ = [
    "TAG_BYTES",
    "cek_bytes",
    "decrypt_content",
    "deflate",
    "encrypt_content",
    "inflate",
    "iv_bytes",
]

#: Every content algorithm we implement, with its tag length (RFC 7518 §5.2.2.1, §5.3).
TAG_BYTES = {
    "A128GCM": 16,
    "A192GCM": 16,
    "A256GCM": 16,
    "A128CBC-HS256": 16,
    "A192CBC-HS384": 24,
    "A256CBC-HS512": 32,
}
assert TAG_BYTES.keys() == JWE_ENCS  # the policy admits exactly what this table covers


@functools.cache
def _model(enc: str) -> JWEEncModel:
    # A registry that knows exactly one algorithm: joserfc never picks one for us.
    return JWERegistry(algorithms=[enc]).get_enc(enc)


def cek_bytes(enc: str) -> int:
    return _model(enc).cek_size // 8


def iv_bytes(enc: str) -> int:
    return _model(enc).iv_size // 8


def encrypt_content(
    enc: str, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """Ciphertext and tag; ``aad`` is the ASCII of the encoded protected header."""
    if len(cek) != cek_bytes(enc) or len(iv) != iv_bytes(enc):
        raise ValueError("CEK or IV of the wrong length")
    ciphertext, tag = _model(enc).encrypt(plaintext, cek, iv, aad)
    return bytes(ciphertext), bytes(tag)


def decrypt_content(
    enc: str, cek: bytes, *, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes
) -> bytes:
    """The plaintext, or DecryptionFailedError for any failure (lengths, tag, padding)."""
    model = _model(enc)
    if len(cek) != cek_bytes(enc) or len(iv) != iv_bytes(enc) or len(tag) != TAG_BYTES[enc]:
        raise DecryptionFailedError
    try:
        return bytes(model.decrypt(ciphertext, tag, cek, iv, aad))
    except (JoseError, ValueError):
        raise DecryptionFailedError from None


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951), as ``zip: "DEF"`` means: no zlib header or trailer."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def inflate(data: bytes, limit: int) -> bytes:
    """Raw DEFLATE with at most ``limit`` bytes ever produced, so a bomb costs no memory.

    zlib-wrapped input, truncation and trailing bytes fail like any other decryption failure;
    output over ``limit`` raises InputTooLargeError (the content is authenticated by then).
    """
    inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
    try:
        output = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise DecryptionFailedError from None
    if len(output) > limit:
        raise InputTooLargeError("the inflated plaintext is over the size cap")
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise DecryptionFailedError
    return output
