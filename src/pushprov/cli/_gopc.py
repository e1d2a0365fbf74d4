"""``pushprov gopc seal`` and ``pushprov gopc open``: a card in, a Google Opaque Payment Card
out, and back as Google would open it."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from typing import BinaryIO

from .. import _api
from .._card import Card, Gopc
from .._policy import GOOGLE_PROFILE
from ._envelope import add_open_keys, add_seal_options, facts, open_keys, read_message, seal
from ._io import json_output, read_stdin
from ._options import Subparsers, add_passphrase, add_time

__all__ = ["register"]

_MAX_CARD_JSON = 4096  # a card is a few fields


def register(commands: Subparsers) -> None:
    gopc = commands.add_parser("gopc", help="seal and open Google Opaque Payment Cards")
    subcommands = gopc.add_subparsers(dest="gopc_command", required=True, metavar="SUBCOMMAND")
    seal_parser = subcommands.add_parser(
        "seal",
        help="card JSON on stdin -> sealed GOPC on stdout",
        description='Reads {"accountNumber":..,"expiryMonth":"MM","expiryYear":"YY"} on stdin.',
    )
    seal_parser.add_argument(
        "--session-id", required=True, help="serverSessionId from Google's SDK"
    )
    add_seal_options(seal_parser)
    seal_parser.set_defaults(handler=_seal)

    open_parser = subcommands.add_parser(
        "open",
        help="sealed GOPC on stdin -> GOPC JSON on stdout (as Google would open it)",
    )
    open_parser.add_argument("--session-id", required=True, help="the serverSessionId expected")
    add_open_keys(open_parser)
    open_parser.add_argument(
        "--masked", action="store_true", help="print a masked summary instead of the GOPC"
    )
    open_parser.add_argument("--json", action="store_true", help="GOPC with envelope facts")
    add_passphrase(open_parser)
    add_time(open_parser)
    open_parser.set_defaults(handler=_open)


def _seal(args: argparse.Namespace, at: _dt.datetime, stdin: BinaryIO) -> bytes:
    def gopc() -> bytes:
        card = Card.from_json(read_stdin(stdin, _MAX_CARD_JSON))
        return Gopc(server_session_id=args.session_id, card=card).to_json()

    return seal(args, at, gopc)


def _open(args: argparse.Namespace, at: _dt.datetime, stdin: BinaryIO) -> bytes:
    decrypt_with, verify_with = open_keys(args)
    result = _api.open_gopc(
        read_message(stdin),
        session_id=args.session_id,
        decrypt_with=decrypt_with,
        verify_with=verify_with,
        format=args.format,
        allow_unsigned=args.allow_unsigned,
        at=at,
        policy=GOOGLE_PROFILE,
    )
    if args.masked:
        return _masked_summary(result).encode() + b"\n"
    if args.json:
        document = facts(result.envelope)
        document["gopc"] = json.loads(result.gopc.to_json())
        return json_output(document)
    return result.gopc.to_json() + b"\n"


def _masked_summary(result: _api.OpenedGopc) -> str:
    card = result.gopc.card
    signed_by = ", ".join(sig.certificate[-16:] for sig in result.envelope.signatures)
    return (
        f"GOPC ok: card {card.account_number.masked} exp {card.expiry_month}/{card.expiry_year}, "
        f"session {result.gopc.server_session_id[:12]}…, cipher {result.envelope.cipher}, "
        f"signed by {signed_by}"
    )
