"""The CLI's inputs, read with a size cap before anything parses them, and its JSON output."""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

from .._errors import InputTooLargeError, UsageError
from .._files import first_line, read_file_capped

__all__ = ["first_line", "json_output", "read_capped", "read_stdin"]


def read_stdin(stdin: BinaryIO, cap: int) -> bytes:
    data = stdin.read(cap + 1)
    if len(data) > cap:
        raise InputTooLargeError("input is larger than the policy allows")
    return data


def read_capped(path: str, cap: int, stdin: BinaryIO | None = None) -> bytes:
    """A file's bytes (``-``: standard input), refused past ``cap`` without reading further."""
    if path != "-":
        return read_file_capped(path, cap)
    try:
        return read_stdin(stdin or sys.stdin.buffer, cap)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def json_output(value: object) -> bytes:
    """``--json`` output: indented, keys sorted, one trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
