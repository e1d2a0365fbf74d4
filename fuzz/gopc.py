"""The GOPC document as it comes out of an opened message."""

from __future__ import annotations

from pushprov import Gopc

from ._fixtures import expected


def fuzz_one(data: bytes) -> None:
    try:
        gopc = Gopc.from_json(data)
    except expected:
        return
    repr(gopc)
    gopc.to_json()
