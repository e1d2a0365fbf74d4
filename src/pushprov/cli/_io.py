"""The CLI's inputs, read with a size cap before anything parses them, and its JSON output."""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

from .._errors import InputTooLargeError, UsageError

__all__ = ["first_line", "json_output", "read_capped", "read_stdin"]

SMALL_FILE = 4096  # passphrase files


def read_stdin(stdin: BinaryIO, cap: int) -> bytes:
    data = stdin.read(cap + 1)
    if len(data) > cap:
        raise InputTooLargeError("input is larger than the policy allows")
    return data


def read_capped(path: str, cap: int, stdin: BinaryIO | None = None) -> bytes:
    """A file's bytes (``-``: standard input), refused past ``cap`` without reading further."""
    try:
        if path == "-":
            return read_stdin(stdin or sys.stdin.buffer, cap)
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > cap:
        raise InputTooLargeError(f"{path} is larger than the policy allows")
    return data


def first_line(path: str) -> bytes:
    """The first line of a small file: how passphrases arrive (never on argv)."""
    lines = read_capped(path, SMALL_FILE).splitlines()
    return lines[0] if lines else b""


def json_output(value: object) -> bytes:
    """``--json`` output: indented, keys sorted, one trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
