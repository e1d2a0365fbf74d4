"""JWE/JWS envelope for GOPCs: a compact JWS nested in a compact JWE, behind our policy.

Sign, then encrypt (RSA-OAEP-256 or legacy RSA1_5; A256GCM or A128CBC-HS256; optional
``zip: "DEF"``); decrypt, then verify. joserfc does the JOSE mechanics under an explicit
algorithm list; this package decides what is allowed, which key is used, and how failures
look from outside.
"""

from ._jwe import open_jwe, seal_jwe
from ._keys import JwkKey, generate_jwk, load_jwk, load_jwks

__all__ = ["JwkKey", "generate_jwk", "load_jwk", "load_jwks", "open_jwe", "seal_jwe"]
