"""The GOPC document as it comes out of an opened message; what it accepts must write back to
the same GOPC, and its repr must mask the card number."""

from __future__ import annotations

from pushprov import Gopc

from ._fixtures import expected


def fuzz_one(data: bytes) -> None:
    try:
        gopc = Gopc.from_json(data)
    except expected:
        return
    if gopc.card.account_number.reveal() in repr(gopc):
        raise AssertionError("the repr shows the card number")
    if Gopc.from_json(gopc.to_json()) != gopc:
        raise AssertionError("the GOPC does not survive writing and reading back")
