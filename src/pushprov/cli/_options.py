"""What the command groups share: the handler's shape and the options several commands take."""

from __future__ import annotations

import argparse
import datetime as _dt
from collections.abc import Callable
from typing import Any, BinaryIO

from .._clock import parse_reference_time
from .._encoding import Encoding
from ._io import first_line

__all__ = [
    "Handler",
    "Outcome",
    "Subparsers",
    "add_encoding",
    "add_passphrase",
    "add_time",
    "passphrase",
]

# Output for stdout; with a status, a report that goes out whatever its verdict.
Outcome = bytes | tuple[bytes, int]
# What a command runs: its arguments, the reference time (--at or now) and standard input.
Handler = Callable[[argparse.Namespace, _dt.datetime, BinaryIO], Outcome]
# argparse's _SubParsersAction (private, and generic only in typeshed).
Subparsers = Any


def add_time(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="TIME",
        type=parse_reference_time,
        help="reference time for every validity and policy check (ISO 8601 or Unix seconds); "
        "default: now",
    )


def add_passphrase(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="file whose first line unlocks protected secret keys (never pass secrets on argv)",
    )


def add_encoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoding",
        choices=[e.value for e in Encoding],
        default=None,
        help="output encoding for pgp (default: base64, RFC 4648 §4, as Google's GOPC spec asks)",
    )


def passphrase(args: argparse.Namespace) -> bytes | None:
    """The key passphrase of ``--passphrase-file``, if one is named."""
    path = getattr(args, "passphrase_file", None)
    if path is None:
        return None
    return first_line(path)
