"""Certificates and secret keys as `key inspect`, `keys import` and the sandbox read them."""

from __future__ import annotations

import contextlib

from pushprov import GOOGLE_PROFILE, openpgp

from ._fixtures import AT, expected


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
        openpgp.read_secret_keys(data, passphrase=b"fuzz")
