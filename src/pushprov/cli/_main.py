"""Command-line face. Habits of sq/sop: subcommands, stdin to stdout, secrets never on argv,
``--json`` for machines, ``--at`` as the reference clock, fixed exit statuses per error class.

On failure nothing is written to stdout and stderr gets one line ``error: <code>: <message>``.

Each command group is a module that adds its parsers and sets their ``handler``; this module
builds the root parser, lets each group add itself, calls the handler and maps the outcome to
stdout and the exit status.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .._clock import now
from .._errors import UsageError
from . import (
    _clients,
    _demo,
    _envelope,
    _gopc,
    _init,
    _key,
    _keys,
    _rehearse,
    _sandbox,
    _serve,
    _store,
)
from ._exits import exit_status_epilog, report_failure

__all__ = ["main"]

# In the order `pushprov --help` lists them.
_GROUPS = (
    _key,  # key generate, key inspect
    _envelope,  # seal, open
    _gopc,  # gopc seal, gopc open
    _init,
    _keys,  # the key store's lifecycle
    _store,
    _serve,
    _clients,
    _sandbox,
    _rehearse,
    _demo,
)

# A JWK thumbprint (RFC 7638: base64url of SHA-256, 43 characters) may begin with "-".
_THUMBPRINT = re.compile(r"-[A-Za-z0-9_-]{42}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's default prints usage and exits 2; keep the one-line error contract.
        raise UsageError(message)

    def _parse_optional(self, arg_string: str) -> Any:
        # A key id that begins with "-" is an argument, not an unknown option: without this,
        # one JWK in 64 could only be named after "--". No option of ours is 43 characters of
        # base64url, so nothing else is taken for one.
        if _THUMBPRINT.fullmatch(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pushprov",
        description="Seal and open Google Opaque Payment Cards (GOPCs) under Google's profile: "
        "SHA-384 signatures, AES-256, RSA keys valid one year (two at most), several keys at "
        "once. Data flows stdin -> stdout.",
        epilog=exit_status_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stdout = sys.stdout.buffer
    try:
        args = build_parser().parse_args(argv)
        # One reference time for the whole command: --at where the command has it, else now.
        at = getattr(args, "at", None) or now()
        outcome = args.handler(args, at, sys.stdin.buffer)
    except KeyboardInterrupt:
        return 130
    except Exception as failure:
        return report_failure(failure)
    # A report (the rehearsal's) goes out whatever its verdict; the status carries the verdict.
    output, status = outcome if isinstance(outcome, tuple) else (outcome, 0)
    stdout.write(output)
    stdout.flush()
    return int(status)
