"""Keys given as files (``--sign-with`` and the like, ``key inspect``): OpenPGP or JWK."""

from __future__ import annotations

from .. import _api, jose, openpgp
from .._policy import Policy
from ._io import read_capped

__all__ = ["jwks", "public_keys", "secret_keys"]


def secret_keys(
    paths: list[str], passphrase: bytes | None, policy: Policy, fmt: _api.Format
) -> list[_api.SigningKey]:
    """Secret keys to sign or decrypt with: OpenPGP keys, or JWKs for the JWE envelope."""
    keys: list[_api.SigningKey] = []
    for path in paths:
        data = read_capped(path, policy.max_key_file_bytes)
        if fmt == "jwe":
            keys += jwks(data, policy)
        else:
            keys += openpgp.read_secret_keys(data, passphrase=passphrase, policy=policy)
    return keys


def public_keys(paths: list[str], policy: Policy, fmt: _api.Format) -> list[_api.RecipientKey]:
    """Public keys to encrypt to or verify with: certificates, or the public part of JWKs."""
    keys: list[_api.RecipientKey] = []
    for path in paths:
        data = read_capped(path, policy.max_key_file_bytes)
        if fmt == "jwe":
            keys += [key.public() for key in jwks(data, policy)]
        else:
            keys += openpgp.read_certificates(data, policy=policy)
    return keys


def jwks(data: bytes, policy: Policy) -> list[jose.JwkKey]:
    """A JWK Set, a single JWK or a PEM key."""
    if data.lstrip().startswith(b"{") and b'"keys"' in data:
        return jose.load_jwks(data, policy=policy)
    return [jose.load_jwk(data, policy=policy)]
