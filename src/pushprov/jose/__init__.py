"""JWE/JWS envelope for GOPCs: a compact JWS nested in a compact JWE, behind our policy.

Sign, then encrypt (RSA-OAEP-256 or legacy RSA1_5; A256GCM or A128CBC-HS256; optional
``zip: "DEF"``); decrypt, then verify. joserfc does the JOSE mechanics under an explicit
algorithm list; this package decides what is allowed, which key is used, and how failures
look from outside. We write registered header members only (JWS: ``alg``, ``kid``; JWE:
``alg``, ``enc``, ``zip``, ``kid``, ``cty: "JWT"``); we read a nested JWS as peers send it,
with ``cty`` ``JWT`` or ``JOSE`` in any case, or with no ``cty`` at all.

Key rules: a JWK pinned by ``alg`` serves that algorithm only. RSA1_5 (PKCS#1 v1.5) is used
to seal, and accepted when opening, only with a key pinned ``"alg": "RSA1_5"`` (for example
``generate_jwk(alg="RSA1_5")``); unpinned keys get RSA-OAEP-256 only, so a v1.5 oracle on a
key can never reach OAEP tokens. A key is unusable before its ``iat`` and, except for
decryption, from its ``exp``; JWK and JWS times end at 9999-12-31T23:59:59Z.
"""

from ._describe import JweInfo, describe_jwe
from ._jwe import open_jwe, seal_jwe
from ._keys import JwkKey, generate_jwk, load_jwk, load_jwks

__all__ = [
    "JweInfo",
    "JwkKey",
    "describe_jwe",
    "generate_jwk",
    "load_jwk",
    "load_jwks",
    "open_jwe",
    "seal_jwe",
]
