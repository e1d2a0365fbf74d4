"""Certificates and secret keys as `key inspect`, `keys import` and the sandbox read them.

Accepted keys are then used as the keystore's self-test uses them (a message sealed to a
certificate; a round trip through a secret key), so a key the reader lets through but the RSA
code cannot use is a finding.
"""

from __future__ import annotations

import contextlib

import pushprov
from pushprov import GOOGLE_PROFILE, openpgp

from ._fixtures import AT, expected, pgp_keys

_KEYS = pgp_keys()


def fuzz_one(data: bytes) -> None:
    try:
        certificates = openpgp.read_certificates(data)
    except expected:
        certificates = []
    for certificate in certificates:
        # What `key inspect` shows of an accepted certificate.
        certificate.policy_problems(GOOGLE_PROFILE, AT)
        certificate.key_infos()
        certificate.armor()
        with contextlib.suppress(expected):
            pushprov.seal_message(b"{}", sign_with=[_KEYS.ours], encrypt_to=[certificate], at=AT)
    try:
        secret_keys = openpgp.read_secret_keys(data, passphrase=b"fuzz")
    except expected:
        secret_keys = []
    for secret in secret_keys:
        # The keystore's self-test of our own key: a round trip through it.
        with contextlib.suppress(expected):
            sealed = pushprov.seal_message(
                b"{}", sign_with=[secret], encrypt_to=[secret.certificate], at=AT
            )
            pushprov.open_message(
                sealed, decrypt_with=[secret], verify_with=[secret.certificate], at=AT
            )
