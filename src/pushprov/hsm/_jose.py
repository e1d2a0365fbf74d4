"""JWKs whose private operations go to the token: RS256/PS256 signing, JWE decryption."""

from __future__ import annotations

import base64
import json

from .. import jose
from .._errors import UnsupportedError, UsageError
from ._key import TokenRsaKey

__all__ = ["token_jwk"]

_SIGNING = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_DECRYPTION = frozenset({"RSA-OAEP-256", "RSA1_5"})


def token_jwk(key: TokenRsaKey, alg: str, *, kid: str | None = None) -> jose.JwkKey:
    """A JWK pinned to ``alg`` whose private operations run in the token.

    Checked now, not at the first message: the key's role must fit ``alg``, and the token must
    offer the mechanism (RSA-OAEP-256 needs CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256,
    which SoftHSM2 2.6 lacks; PS256 needs CKM_SHA256_RSA_PKCS_PSS or CKM_RSA_PKCS_PSS).
    """
    if alg in _SIGNING:
        role = "sign"
        if alg.startswith("PS"):
            key._require_pss(alg)
    elif alg in _DECRYPTION:
        role = "decrypt"
    else:
        raise UnsupportedError("token JWKs sign with RS*/PS* or decrypt RSA-OAEP-256/RSA1_5")
    if key.role != role:
        raise UsageError(f"{alg} needs a token key made to {role}, this one is for {key.role}")
    if alg == "RSA-OAEP-256":
        key.check_oaep_256()
    numbers = key.public_key.public_numbers()
    member: dict[str, str] = {
        "kty": "RSA",
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
        "alg": alg,
        "use": "sig" if role == "sign" else "enc",
    }
    if kid is not None:
        member["kid"] = kid
    return jose.load_jwk(json.dumps(member))._with_ops(key)


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
