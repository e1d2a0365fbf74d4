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
from .._errors import PushprovError, UsageError
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

__all__ = ["main"]

EXIT_STATUS_TABLE = """exit status:
  0   success
  1   internal error (details withheld so no data can leak)
  2   usage: bad arguments, unreadable file, bad --at
  3   malformed_input     4  input_too_large     5  decryption_failed
  6   signature_invalid   7  policy_violation    8  key_invalid
  9   key_unusable       10  unsupported        11  gopc_invalid
  12  session_mismatch   13  bad_passphrase
  20  key_not_found      21  transition_refused  22  self_test_failed
  23  still_draining     24  store_conflict      25  store_insecure
  26  store_corrupt      27  audit_tampered      28  store_unavailable
  30  attention_needed (keys check)
"""

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
        epilog=EXIT_STATUS_TABLE,
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
    except PushprovError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except Exception:
        print("error: internal_error: unexpected failure", file=sys.stderr)
        return 1
    # A report (the rehearsal's) goes out whatever its verdict; the status carries the verdict.
    output, status = outcome if isinstance(outcome, tuple) else (outcome, 0)
    stdout.write(output)
    stdout.flush()
    return int(status)
