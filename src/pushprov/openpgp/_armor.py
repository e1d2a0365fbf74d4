"""ASCII armor as a standalone operation (``sop armor``/``dearmor``): the kind from the packets."""

from __future__ import annotations

from .._errors import MalformedInputError
from ._packets import FramingError, Tag, armor, dearmor, is_armored, read_packets

__all__ = ["armor_data", "dearmor_data"]

_KINDS = {
    Tag.SECRET_KEY: "PRIVATE KEY BLOCK",
    Tag.PUBLIC_KEY: "PUBLIC KEY BLOCK",
    Tag.SIGNATURE: "SIGNATURE",
}


def armor_data(data: bytes) -> bytes:
    """Armor binary OpenPGP; the label follows the first packet. Armored input comes back as is."""
    if is_armored(data):
        dearmor_data(data)  # only well-formed armor passes through unchanged
        return data
    try:
        packets = read_packets(data)
        first = next(packets)[0]
        for _ in packets:  # the whole input must be packets, not just its start
            pass
    except (FramingError, StopIteration):
        raise MalformedInputError("not binary OpenPGP data") from None
    return armor(_KINDS.get(first, "MESSAGE"), data).encode("ascii")


def dearmor_data(data: bytes) -> bytes:
    """The binary inside ASCII armor. Binary input comes back as is."""
    if not is_armored(data):
        if not data or not data[0] & 0x80:
            raise MalformedInputError("neither ASCII armor nor binary OpenPGP")
        return data
    try:
        return dearmor(data)[1]
    except FramingError:
        raise MalformedInputError("bad ASCII armor") from None
