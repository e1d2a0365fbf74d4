"""Packet framing and the packet bodies every OpenPGP reader parses before any cryptography.

These readers are internal: they raise ``FramingError``, which each public caller maps to its
own ``PushprovError`` (so it counts as an expected refusal here too).
"""

from __future__ import annotations

from pushprov.openpgp._cert import ComponentKey
from pushprov.openpgp._packets import FramingError, Tag, read_mpi, read_packets
from pushprov.openpgp._signature import parse_signature

from ._fixtures import expected

_KEY_TAGS = frozenset({Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY, Tag.SECRET_KEY, Tag.SECRET_SUBKEY})


def fuzz_one(data: bytes) -> None:
    try:
        for tag, body in read_packets(data):
            _body(tag, body)
    except (FramingError, expected):
        pass


def _body(tag: int, body: bytes) -> None:
    try:
        if tag == Tag.SIGNATURE:
            parse_signature(body)
        elif tag in _KEY_TAGS:
            ComponentKey(body)
        elif tag == Tag.PKESK and len(body) >= 10:
            read_mpi(body, 10)
    except (FramingError, expected):
        pass
