"""Secret-key material (RFC 9580 §3.7, §5.5.3): unlocking it on read, protecting it on export."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher

from .._errors import KeyInvalidError, PassphraseError, UnsupportedError
from ._algorithms import (
    AES256,
    CFB,
    CIPHER_IDS,
    HASH_IDS,
    cipher_spec,
    new_hash,
    require_runnable,
)
from ._cert import ComponentKey
from ._packets import FramingError, checksum16, mpi, read_mpi
from ._rsa import PrivateKeyOps, SoftwareRsaKey

__all__ = ["protect", "unlock"]

_S2K_COUNT_OCTET = 0xF0  # (16 + 0) << (15 + 6) = 33,554,432 octets hashed


def unlock(key: ComponentKey, secret: bytes, passphrase: bytes | None) -> PrivateKeyOps | None:
    """The private key behind a secret-key packet's secret part (§5.5.3): clear or S2K
    protected. None for a GnuPG stub, whose secret is kept elsewhere."""
    if not secret:
        raise FramingError("truncated secret key")
    usage = secret[0]
    if usage == 0:
        return _unlock_clear(key, secret)
    if usage not in (254, 255):
        raise UnsupportedError("secret keys protected without S2K are not supported")
    return _unlock_s2k(key, secret, passphrase)


def _unlock_clear(key: ComponentKey, secret: bytes) -> PrivateKeyOps:
    """A secret part stored in the clear (usage 0): material and a 16-bit checksum."""
    if len(secret) < 3:
        raise FramingError("truncated secret key")
    material, check = secret[1:-2], secret[-2:]
    if checksum16(material) != check:
        raise KeyInvalidError("secret key checksum mismatch")
    return _rsa_private(key, material)


def _unlock_s2k(key: ComponentKey, secret: bytes, passphrase: bytes | None) -> PrivateKeyOps | None:
    """A secret part protected by S2K (usage 254 or 255), or a GnuPG stub."""
    if len(secret) < 4:
        raise FramingError("truncated secret key")
    spec = cipher_spec(secret[1])
    s2k_type = secret[2]
    if s2k_type == 101:
        return None  # GnuPG stub (secret kept elsewhere, e.g. --export-secret-subkeys)
    if spec is None:
        raise UnsupportedError("secret key is protected with an unsupported cipher")
    require_runnable(spec)  # e.g. CAST5 (old GnuPG) without OpenSSL's legacy provider
    if s2k_type not in (0, 1, 3):
        raise UnsupportedError(f"S2K type {s2k_type} is not supported")
    # usage, cipher, S2K type, hash, [salt 8], [count 1], IV, encrypted material
    salt_length = 8 if s2k_type in (1, 3) else 0
    count_length = 1 if s2k_type == 3 else 0
    pos = 4 + salt_length + count_length
    if len(secret) < pos + spec.block_size + 2:
        raise FramingError("truncated secret key")
    hash_algo = secret[3]
    salt = secret[4 : 4 + salt_length]
    count = secret[4 + salt_length] if count_length else 0
    iv = secret[pos : pos + spec.block_size]
    sealed = secret[pos + spec.block_size :]
    if passphrase is None:
        raise PassphraseError(f"key {key.fingerprint.hex().upper()} is protected by a passphrase")
    kek = _s2k_derive(s2k_type, hash_algo, salt, count, passphrase, spec.key_size)
    decryptor = Cipher(spec.factory(kek), CFB(iv)).decryptor()
    clear = decryptor.update(sealed) + decryptor.finalize()
    return _rsa_private(key, _checked_material(secret[0], clear))


def _checked_material(usage: int, clear: bytes) -> bytes:
    """The decrypted material once its SHA-1 (usage 254) or 16-bit checksum (255) matches."""
    if usage == 254:
        material, check = clear[:-20], clear[-20:]
        ok = hmac.compare_digest(hashlib.sha1(material).digest(), check)  # noqa: S324
    else:
        material, check = clear[:-2], clear[-2:]
        ok = checksum16(material) == check
    if not ok:
        raise PassphraseError("wrong passphrase")
    return material


def _s2k_derive(
    s2k_type: int, hash_algo: int, salt: bytes, count_octet: int, passphrase: bytes, size: int
) -> bytes:
    try:
        algorithm = new_hash(hash_algo).algorithm
    except KeyError:
        raise UnsupportedError("S2K hash algorithm is not supported") from None
    data = salt + passphrase
    total = len(data)
    if s2k_type == 3:
        total = max((16 + (count_octet & 15)) << ((count_octet >> 4) + 6), len(data))
    out = b""
    preload = 0
    while len(out) < size:
        hasher = hashes.Hash(algorithm)
        hasher.update(b"\0" * preload)
        _hash_repeated(hasher, data, total)
        out += hasher.finalize()
        preload += 1
    return out[:size]


def _hash_repeated(hasher: hashes.Hash, data: bytes, total: int) -> None:
    if not data:
        return
    block = data * max(1, 65536 // len(data))
    remaining = total
    while remaining >= len(block):
        hasher.update(block)
        remaining -= len(block)
    whole, rest = divmod(remaining, len(data))
    hasher.update(data * whole + data[:rest])


def _rsa_private(key: ComponentKey, material: bytes) -> PrivateKeyOps:
    if key.public is None:
        raise UnsupportedError("only RSA secret keys are supported")
    d, pos = read_mpi(material, 0)
    p, pos = read_mpi(material, pos)
    q, pos = read_mpi(material, pos)
    _u, pos = read_mpi(material, pos)
    if pos != len(material):
        raise KeyInvalidError("secret key material has trailing data")
    public = key.public.public_numbers()
    d_i, p_i, q_i = (int.from_bytes(x, "big") for x in (d, p, q))
    try:
        private = rsa.RSAPrivateNumbers(
            p=p_i,
            q=q_i,
            d=d_i,
            dmp1=rsa.rsa_crt_dmp1(d_i, p_i),
            dmq1=rsa.rsa_crt_dmq1(d_i, q_i),
            iqmp=rsa.rsa_crt_iqmp(p_i, q_i),
            public_numbers=public,
        ).private_key()
    except ValueError:
        raise KeyInvalidError("secret key does not match its public key") from None
    return SoftwareRsaKey(private)


def protect(key: ComponentKey, private: rsa.RSAPrivateNumbers, passphrase: bytes | None) -> bytes:
    """A secret-key packet body for ``key``: clear with a checksum, or with a passphrase
    iterated+salted S2K (SHA-256) and AES-256 with the SHA-1 check (usage 254)."""
    # OpenPGP's u is p^-1 mod q with p < q; PKCS#1's iqmp is q^-1 mod p. Swap to match.
    p, q = sorted((private.p, private.q))
    u = pow(p, -1, q)
    secret = mpi(private.d) + mpi(p) + mpi(q) + mpi(u)
    if passphrase is None:
        checksum = checksum16(secret)
        return key.body + b"\x00" + secret + checksum
    salt = os.urandom(8)
    s2k = bytes([3, HASH_IDS["SHA256"]]) + salt + bytes([_S2K_COUNT_OCTET])
    kek = _s2k_derive(3, HASH_IDS["SHA256"], salt, _S2K_COUNT_OCTET, passphrase, 32)
    iv = os.urandom(16)
    sha1 = hashlib.sha1(secret).digest()  # noqa: S324 - the S2K usage 254 check is SHA-1
    encryptor = Cipher(AES256.factory(kek), CFB(iv)).encryptor()
    sealed = encryptor.update(secret + sha1) + encryptor.finalize()
    return key.body + bytes([254, CIPHER_IDS["AES256"]]) + s2k + iv + sealed
