"""OpenPGP algorithm identifiers (RFC 9580 §9) and their pyca/cryptography counterparts."""

from __future__ import annotations

import functools

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from .._errors import UnsupportedError
from .._policy import OPENPGP_CIPHERS, OPENPGP_COMPRESSIONS, OPENPGP_HASHES

__all__ = [
    "AES256",
    "CFB",
    "CIPHERS",
    "CIPHER_IDS",
    "COMPRESSION_IDS",
    "HASHES",
    "HASH_IDS",
    "PK_RSA",
    "PK_RSA_ENCRYPT_ONLY",
    "PK_RSA_SIGN_ONLY",
    "RSA_ALGOS",
    "CipherSpec",
    "cipher_spec",
    "hash_name",
    "new_hash",
    "require_runnable",
]

PK_RSA = 1
PK_RSA_ENCRYPT_ONLY = 2
PK_RSA_SIGN_ONLY = 3
RSA_ALGOS = frozenset({PK_RSA, PK_RSA_ENCRYPT_ONLY, PK_RSA_SIGN_ONLY})

HASH_IDS: dict[str, int] = {
    "MD5": 1,
    "SHA1": 2,
    "RIPEMD160": 3,
    "SHA256": 8,
    "SHA384": 9,
    "SHA512": 10,
    "SHA224": 11,
}
_HASH_NAMES = {v: k for k, v in HASH_IDS.items()}

# Hashes we can compute. MD5 and SHA-1 stay here so a refusal can name them after policy says no.
HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    1: hashes.MD5,
    2: hashes.SHA1,
    8: hashes.SHA256,
    9: hashes.SHA384,
    10: hashes.SHA512,
    11: hashes.SHA224,
}


def hash_name(algo_id: int) -> str:
    return _HASH_NAMES.get(algo_id, f"hash-{algo_id}")


def new_hash(algo_id: int) -> hashes.Hash:
    return hashes.Hash(HASHES[algo_id]())


class CipherSpec:
    __slots__ = ("block_size", "factory", "key_size", "name")

    def __init__(self, name: str, factory: type, key_size: int, block_size: int) -> None:
        self.name = name
        self.factory = factory
        self.key_size = key_size
        self.block_size = block_size


CIPHER_IDS: dict[str, int] = {
    "IDEA": 1,
    "TRIPLEDES": 2,
    "CAST5": 3,
    "BLOWFISH": 4,
    "AES128": 7,
    "AES192": 8,
    "AES256": 9,
    "TWOFISH": 10,
}

# Ciphers we can run, so that a policy may allow any of them (Google's allows AES-256 only). The
# legacy ones need OpenSSL's legacy provider, which CRYPTOGRAPHY_OPENSSL_NO_LEGACY=1 leaves out.
CIPHERS: dict[int, CipherSpec] = {
    1: CipherSpec("IDEA", decrepit.IDEA, 16, 8),
    2: CipherSpec("TRIPLEDES", decrepit.TripleDES, 24, 8),
    3: CipherSpec("CAST5", decrepit.CAST5, 16, 8),
    4: CipherSpec("BLOWFISH", decrepit.Blowfish, 16, 8),
    7: CipherSpec("AES128", algorithms.AES, 16, 16),
    8: CipherSpec("AES192", algorithms.AES, 24, 16),
    9: CipherSpec("AES256", algorithms.AES, 32, 16),
}


# The policy names what may be chosen; it must be exactly what can run here.
assert {_HASH_NAMES[algo] for algo in HASHES} == OPENPGP_HASHES
assert {spec.name for spec in CIPHERS.values()} == OPENPGP_CIPHERS
assert all(CIPHER_IDS[spec.name] == algo for algo, spec in CIPHERS.items())

# Compression algorithms the opener inflates (§9.4), so all a key may announce it prefers.
COMPRESSION_IDS: dict[str, int] = {"UNCOMPRESSED": 0, "ZIP": 1, "ZLIB": 2, "BZIP2": 3}
assert set(COMPRESSION_IDS) == OPENPGP_COMPRESSIONS

AES256 = CIPHERS[9]  # what we write (Google's profile) and key-protection cipher


def cipher_spec(algo_id: int) -> CipherSpec | None:
    return CIPHERS.get(algo_id)


def require_runnable(spec: CipherSpec) -> None:
    """Refuse, as ``unsupported``, a cipher this OpenSSL cannot run (a legacy one without the
    legacy provider). Callers ask before any secret-dependent work, never after."""
    if not _runnable(spec):
        raise UnsupportedError(f"cipher {spec.name} is not available in this OpenSSL build")


@functools.cache
def _runnable(spec: CipherSpec) -> bool:
    try:
        Cipher(spec.factory(bytes(spec.key_size)), CFB(bytes(spec.block_size))).decryptor()
    except UnsupportedAlgorithm:
        return False
    return True


try:  # cryptography >= 47 keeps CFB among the decrepit modes; older releases in primitives.
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - depends on the installed cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment,unused-ignore]
