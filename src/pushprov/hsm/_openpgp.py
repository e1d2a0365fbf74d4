"""OpenPGP certificates around token keys: made by the token, reopened through it."""

from __future__ import annotations

import datetime as _dt

from .. import openpgp
from .._policy import GOOGLE_PROFILE, Policy
from ._key import TokenRsaKey
from ._token import DEFAULT_BITS, Token

__all__ = ["generate_openpgp_key", "open_openpgp_key"]


def generate_openpgp_key(
    token: Token,
    user_id: str,
    *,
    label: str,
    bits: int = DEFAULT_BITS,
    validity: _dt.timedelta | None = None,
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
) -> tuple[openpgp.SecretKey, TokenRsaKey, TokenRsaKey]:
    """A [C S] primary and an [E] subkey made in the token, certified through the token.

    The self-signature and the subkey binding signature are made by the primary inside the
    token (the policy's hash, SHA-384). Returns the secret key (every private operation goes
    to the token) and the two token keys, named ``<label>.sign`` and ``<label>.decrypt``:
    their ``uri()`` is what a store records to reopen them with ``open_openpgp_key``.
    """
    primary = token.generate_rsa_key(f"{label}.sign", "sign", bits=bits)
    made = [primary]
    try:
        subkey = token.generate_rsa_key(f"{label}.decrypt", "decrypt", bits=bits)
        made.append(subkey)
        certificate = openpgp.certify_keys(
            user_id,
            primary=primary,
            subkey=subkey.public_key,
            validity=validity,
            policy=policy,
            at=at,
        )
    except BaseException:
        # A key pair no certificate names is litter in the token: remove it.
        for key in made:
            token.destroy(key)
        raise
    return openpgp.secret_key_from_ops(certificate, [primary, subkey]), primary, subkey


def open_openpgp_key(
    token: Token, certificate: openpgp.Certificate, *, sign_uri: str, decrypt_uri: str
) -> openpgp.SecretKey:
    """``certificate`` with its private halves in the token, named by the URIs that
    ``generate_openpgp_key``'s keys gave (``TokenRsaKey.uri()``).

    Each key must carry its role's attribute (CKA_SIGN, CKA_DECRYPT) and belong to the
    certificate; anything else is refused before any use.
    """
    keys = [token.rsa_key(sign_uri, "sign"), token.rsa_key(decrypt_uri, "decrypt")]
    return openpgp.secret_key_from_ops(certificate, keys)
