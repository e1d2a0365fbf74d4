"""Google's connection profile as one immutable value, passed down to every check.

Tests and the sandbox build stricter or looser policies with ``dataclasses.replace``; nothing
below this module hard-codes an algorithm list or a limit.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt

from ._encoding import Encoding

__all__ = [
    "GOOGLE_PROFILE",
    "JWE_ALGS",
    "JWE_ENCS",
    "JWS_ALGS",
    "OPENPGP_CIPHERS",
    "OPENPGP_COMPRESSIONS",
    "OPENPGP_HASHES",
    "Policy",
]

# What pushprov.openpgp can run, so all a policy may name (openpgp._algorithms asserts the two
# agree). The weak ones run only where a policy allows them (Google's does not).
OPENPGP_CIPHERS = frozenset(
    {"IDEA", "TRIPLEDES", "CAST5", "BLOWFISH", "AES128", "AES192", "AES256"}
)
OPENPGP_HASHES = frozenset({"MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"})
OPENPGP_COMPRESSIONS = frozenset({"UNCOMPRESSED", "ZIP", "ZLIB", "BZIP2"})
# What pushprov.jose implements (jose._content asserts its tag table matches JWE_ENCS).
# RSA-OAEP (SHA-1), "none", "dir", key wrap, PBES2 and ECDH-ES are outside it on purpose.
JWE_ALGS = frozenset({"RSA-OAEP-256", "RSA1_5"})
JWE_ENCS = frozenset(
    {"A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"}
)
JWS_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Policy:
    """Allow-lists and limits. Algorithm names are the upper-case names used in RFC 9580 / JOSE."""

    # OpenPGP signatures: what we write, and what we accept from others.
    signing_hash: str = "SHA384"
    signature_hashes: frozenset[str] = frozenset({"SHA256", "SHA384", "SHA512"})
    # OpenPGP symmetric encryption: what we write, and what we accept (AES128 only by choice).
    # Opening runs only these; a session key for another cipher is the one decryption failure.
    # Failure paths run ``cipher``, so only a single-cipher list makes every path the same work.
    cipher: str = "AES256"
    ciphers: frozenset[str] = frozenset({"AES256"})
    # What keys we generate announce they prefer to receive, most preferred first (§5.2.3.14-16).
    preferred_ciphers: tuple[str, ...] = ("AES256", "AES192", "AES128")
    preferred_hashes: tuple[str, ...] = ("SHA384", "SHA512", "SHA256")
    preferred_compression: tuple[str, ...] = ("ZLIB", "ZIP", "UNCOMPRESSED")
    # Keys.
    min_rsa_bits: int = 2048
    default_rsa_bits: int = 3072
    default_key_validity: _dt.timedelta = _dt.timedelta(days=365)
    max_key_lifetime: _dt.timedelta = _dt.timedelta(days=730)
    # How far a signature's creation time may lie in the future of the reference time.
    clock_skew: _dt.timedelta = _dt.timedelta(seconds=60)
    # Size caps, applied before parsing (message) and while inflating (plaintext).
    max_message_bytes: int = 64 * 1024
    max_plaintext_bytes: int = 64 * 1024
    max_key_file_bytes: int = 1024 * 1024
    # Work budgets, checked before the work they bound, so that no input (a message from anyone,
    # a key file from a stranger) buys more than a few RSA operations. Google seals to one key;
    # GnuPG adds one PKESK per recipient and per encrypt-to-self; a rotation holds two or three
    # decryption keys. Everything beyond is refused before any RSA work.
    max_pkesks: int = 8  # PKESK packets in one message
    max_rsa_private_ops: int = 8  # (PKESK, key) trials per open, after de-duplication
    max_signatures: int = 8  # signature packets in one message
    max_signature_verifications: int = 8  # (signature, key) RSA checks per message
    # Certificates: components, signatures per component, RSA checks per certificate, and the
    # RSA numbers themselves (e <= 2^32 and n <= 16384 bits keep each check cheap).
    max_user_ids: int = 32
    max_subkeys: int = 32
    max_signatures_per_component: int = 64
    max_key_signature_verifications: int = 128
    max_rsa_bits: int = 16384
    max_rsa_exponent: int = 2**32
    # GOPC.
    output_encoding: Encoding = Encoding.BASE64
    max_session_id_length: int = 1024
    # JOSE: what we seal with by default, what we accept, and the caps of the compact form.
    jwe_alg: str = "RSA-OAEP-256"
    jwe_algs: frozenset[str] = frozenset({"RSA-OAEP-256", "RSA1_5"})  # RSA1_5: legacy, §11.5
    jwe_enc: str = "A256GCM"
    jwe_encs: frozenset[str] = frozenset({"A256GCM", "A128CBC-HS256"})
    jws_alg: str = "RS256"
    jws_algs: frozenset[str] = frozenset({"RS256", "RS384", "RS512", "PS256"})
    max_jose_header_bytes: int = 2048  # encoded protected header, JWE and JWS alike
    max_jose_token_bytes: int = 192 * 1024  # room for max_plaintext_bytes, nested and encoded twice

    def __post_init__(self) -> None:
        # The order of the checks is the order of the messages a caller sees first.
        self._check_openpgp_names()
        self._check_openpgp_limits()
        self._check_jose()

    def _check_openpgp_names(self) -> None:
        # OpenPGP: a name outside the implementation would fail only when sealing, as a crash.
        if not self.signature_hashes <= OPENPGP_HASHES:
            raise ValueError(f"signature_hashes allow {', '.join(sorted(OPENPGP_HASHES))} only")
        if self.signing_hash not in self.signature_hashes:
            raise ValueError("signing_hash must be one of signature_hashes")
        if not self.ciphers <= OPENPGP_CIPHERS:
            raise ValueError(f"ciphers allow {', '.join(sorted(OPENPGP_CIPHERS))} only")
        if self.cipher not in self.ciphers:
            raise ValueError("cipher must be one of ciphers")
        for name, preferences, known in (
            ("preferred_ciphers", self.preferred_ciphers, OPENPGP_CIPHERS),
            ("preferred_hashes", self.preferred_hashes, OPENPGP_HASHES),
            ("preferred_compression", self.preferred_compression, OPENPGP_COMPRESSIONS),
        ):
            # An unknown name would fail only when generating a key, as a crash.
            if not preferences or len(set(preferences)) != len(preferences):
                raise ValueError(f"{name} must list distinct names, at least one")
            if not set(preferences) <= known:
                raise ValueError(f"{name} allow {', '.join(sorted(known))} only")

    def _check_openpgp_limits(self) -> None:
        if self.default_key_validity > self.max_key_lifetime:
            raise ValueError("default_key_validity exceeds max_key_lifetime")
        if min(self.max_message_bytes, self.max_plaintext_bytes, self.min_rsa_bits) <= 0:
            raise ValueError("limits must be positive")
        budgets = (
            self.max_pkesks,
            self.max_rsa_private_ops,
            self.max_signatures,
            self.max_signature_verifications,
            self.max_user_ids,
            self.max_subkeys,
            self.max_signatures_per_component,
            self.max_key_signature_verifications,
        )
        if min(budgets) <= 0:
            raise ValueError("work budgets must be positive")
        if self.min_rsa_bits > self.max_rsa_bits:
            raise ValueError("min_rsa_bits exceeds max_rsa_bits")
        if self.max_rsa_exponent < 65537:
            raise ValueError("max_rsa_exponent must admit 65537")

    def _check_jose(self) -> None:
        # JOSE: only what pushprov.jose implements can be named, whatever a policy says.
        if not self.jwe_algs <= JWE_ALGS or self.jwe_alg not in self.jwe_algs:
            raise ValueError("jwe_alg must be one of jwe_algs, which allow RSA-OAEP-256 and RSA1_5")
        if not self.jwe_encs <= JWE_ENCS or self.jwe_enc not in self.jwe_encs:
            raise ValueError(
                "jwe_enc must be one of jwe_encs, which allow AES-GCM and AES-CBC-HMAC"
            )
        if not self.jws_algs <= JWS_ALGS:
            raise ValueError("jws_algs allow RS256/384/512 and PS256/384/512 only")
        if self.jws_alg not in self.jws_algs:
            raise ValueError("jws_alg must be one of jws_algs")
        if min(self.max_jose_header_bytes, self.max_jose_token_bytes) <= 0:
            raise ValueError("limits must be positive")


#: Google's profile: SHA-384 signatures, AES-256, RSA >= 2048, keys valid one year (two at most).
GOOGLE_PROFILE = Policy()
