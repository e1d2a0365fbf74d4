"""Base64 on input: either alphabet, padded or not, line-wrapped; nothing else."""

from __future__ import annotations

import base64
import os

import pytest

from pushprov import Encoding, MalformedInputError
from pushprov._encoding import b64decode_any, b64encode


@pytest.mark.parametrize("size", [0, 1, 2, 3, 62, 63, 64, 65, 300])
def test_every_accepted_form_decodes(size: int) -> None:
    data = os.urandom(size) + b"\xfb\xff"  # make both alphabets' special characters likely
    std = base64.b64encode(data)
    url = base64.urlsafe_b64encode(data)
    wrapped = b"\n".join(std[i : i + 64] for i in range(0, len(std), 64))
    for form in (std, url, std.rstrip(b"="), url.rstrip(b"="), wrapped, b"  " + std + b"\r\n"):
        assert b64decode_any(form) == data


def test_output_alphabets() -> None:
    data = b"\xfb\xff\xfe" * 10
    assert b64encode(data, Encoding.BASE64) == base64.b64encode(data)
    assert b64encode(data, Encoding.BASE64URL) == base64.urlsafe_b64encode(data)


@pytest.mark.parametrize(
    "bad", [b"", b"   ", b"a", b"ab+_", b"abc=d", b"ab===", b"a!bc", b"abcd=="]
)
def test_malformed_is_refused(bad: bytes) -> None:
    with pytest.raises(MalformedInputError):
        b64decode_any(bad)
