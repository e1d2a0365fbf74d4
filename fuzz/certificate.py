"""Certificates and secret keys as `key inspect`, `keys import` and the sandbox read them.

An accepted certificate is then used as the keystore's self-test uses a partner's: a message
is sealed to it, so a key the reader lets through but the RSA code cannot use is a finding.
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
    with contextlib.suppress(expected):
        openpgp.read_secret_keys(data, passphrase=b"fuzz")
