"""Armor, base64 (both alphabets) and binary sniffing in front of every OpenPGP message."""

from __future__ import annotations

import contextlib

from pushprov import openpgp

from ._fixtures import expected


def fuzz_one(data: bytes) -> None:
    with contextlib.suppress(expected):
        openpgp.decode_message(data)
