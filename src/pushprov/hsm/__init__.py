"""Keys that never leave an HSM: RSA keys in a PKCS#11 token behind pushprov's RSA seams.

``open_token`` logs in to a token named by an RFC 7512 ``pkcs11:`` URI (the PIN from a file or
the environment, never an argument); ``Token.generate_rsa_key`` makes a key pair inside it
(sensitive, not extractable, one role: sign or decrypt) and ``Token.rsa_key`` finds one again.
A ``TokenRsaKey`` is an ``openpgp.PrivateKeyOps`` and a JOSE private-key backend:
``generate_openpgp_key``/``open_openpgp_key`` build and reopen OpenPGP keys whose primary and
[E] subkey live in the token, ``token_jwk`` makes a JWK that signs or decrypts there.
``TokenCustody`` is what the key store uses: tokens opened once per process, key records'
``Custody`` (the token keys' URIs), keys found again after a token or session was lost.
Binding: python-pkcs11 (MIT, typed, wheels for CPython 3.11+).
"""

from ._custody import Custody, TokenCustody
from ._errors import TokenKeyNotFoundError, TokenUnavailableError
from ._jose import token_jwk
from ._key import TokenRsaKey
from ._openpgp import generate_openpgp_key, open_openpgp_key
from ._token import Token, open_token
from ._uri import Pkcs11Uri, parse_uri

__all__ = [
    "Custody",
    "Pkcs11Uri",
    "Token",
    "TokenCustody",
    "TokenKeyNotFoundError",
    "TokenRsaKey",
    "TokenUnavailableError",
    "generate_openpgp_key",
    "open_openpgp_key",
    "open_token",
    "parse_uri",
    "token_jwk",
]
