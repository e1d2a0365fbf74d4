"""SOP's indirect inputs and outputs: a file name, or the special designators ``@ENV:`` / ``@FD:``.

Secrets (key passwords) can so come from the environment or an inherited descriptor, never argv.
A designator that also names an existing file is ambiguous and refused, as the draft asks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from ._errors import SopError, SopFailure

__all__ = ["read_capped", "read_input", "write_output"]

#: Cap on any one input (keys, certificates, signatures, stdin): the policy caps apply after.
MAX_INPUT_BYTES = 16 * 1024 * 1024

_DESIGNATOR = re.compile(r"@([A-Za-z]+):(.*)", re.DOTALL)


def read_capped(stream: BinaryIO, what: str) -> bytes:
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise SopError(SopFailure.BAD_DATA, f"{what} is larger than {MAX_INPUT_BYTES} octets")
    return data


def read_input(name: str) -> bytes:
    """The bytes a SOP argument names: ``@ENV:VAR``, ``@FD:N`` or a file."""
    match = _DESIGNATOR.fullmatch(name)
    if match is None:
        return _read_file(name)
    if Path(name).exists():
        raise SopError(SopFailure.AMBIGUOUS_INPUT, "a file exists with the designator's name")
    prefix, rest = match.group(1), match.group(2)
    if prefix == "ENV":
        value = os.environb.get(rest.encode())
        if value is None:
            raise SopError(SopFailure.MISSING_INPUT, f"environment variable {rest} is not set")
        return value
    if prefix == "FD":
        with os.fdopen(_fd_number(rest), "rb", closefd=False) as stream:
            return read_capped(stream, "input")
    raise SopError(SopFailure.UNSUPPORTED_SPECIAL_PREFIX, f"unsupported designator @{prefix}:")


def write_output(name: str, data: bytes) -> None:
    """Write to ``@FD:N`` or to a new file (an existing one is never overwritten)."""
    match = _DESIGNATOR.fullmatch(name)
    if match is not None:
        if match.group(1) != "FD":
            raise SopError(
                SopFailure.UNSUPPORTED_SPECIAL_PREFIX, f"@{match.group(1)}: is not an output"
            )
        fd = _fd_number(match.group(2))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return
    try:
        with open(name, "xb") as stream:
            stream.write(data)
    except FileExistsError:
        raise SopError(SopFailure.OUTPUT_EXISTS, "the output file exists already") from None
    except OSError as error:
        raise SopError(SopFailure.GENERIC, f"cannot write the output: {error.strerror}") from None


def _fd_number(text: str) -> int:
    if not text.isdigit():
        raise SopError(SopFailure.UNSUPPORTED_SPECIAL_PREFIX, "@FD: takes a descriptor number")
    return int(text)


def _read_file(name: str) -> bytes:
    path = Path(name)
    if not path.exists():
        raise SopError(SopFailure.MISSING_INPUT, "an input file does not exist")
    try:
        with path.open("rb") as stream:
            return read_capped(stream, "an input file")
    except OSError as error:
        raise SopError(SopFailure.GENERIC, f"cannot read an input: {error.strerror}") from None
