"""``pushprov clients add|list|revoke``: the service's API clients (only a key's hash is
stored)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ._options import Handler, Subparsers
from ._serve import service_config

if TYPE_CHECKING:
    from ..store import ServiceState

__all__ = ["register"]


def register(commands: Subparsers) -> None:
    clients = commands.add_parser(
        "clients", help="API clients of the service (bearer keys; only their hash is stored)"
    ).add_subparsers(dest="clients_command", required=True, metavar="SUBCOMMAND")
    add = clients.add_parser("add", help="add a client; prints its API key once")
    add.add_argument("name")
    add.set_defaults(handler=_on_state(_add))
    list_ = clients.add_parser("list", help="list clients")
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(handler=_on_state(_list))
    revoke = clients.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_on_state(_revoke))
    for sub in clients.choices.values():
        sub.add_argument("--config", type=Path, help="TOML file ([service] table)")
        sub.add_argument("--data-dir", dest="data_dir", help="data directory")
        sub.add_argument(
            "--store", metavar="URL", help="a postgresql:// URL: the clients of every instance"
        )


_Action = Callable[["ServiceState", argparse.Namespace, _dt.datetime], bytes]


def _on_state(action: _Action) -> Handler:
    """The handler that opens the service's state, runs ``action`` on it and closes it."""

    def handler(args: argparse.Namespace, at: _dt.datetime, _: BinaryIO) -> bytes:
        state = service_config(args).backend().open_state()
        try:
            return action(state, args, at)
        finally:
            state.close()

    return handler


def _add(state: ServiceState, args: argparse.Namespace, at: _dt.datetime) -> bytes:
    api_key = state.add_client(args.name, at=at)
    return (api_key + "\n").encode()


def _revoke(state: ServiceState, args: argparse.Namespace, at: _dt.datetime) -> bytes:
    state.revoke_client(args.name, at=at)
    return b""


def _list(state: ServiceState, args: argparse.Namespace, _: _dt.datetime) -> bytes:
    rows = [
        {
            "name": client.name,
            "created": client.created.isoformat(),
            "revoked": client.revoked.isoformat() if client.revoked else None,
        }
        for client in state.list_clients()
    ]
    if args.json:
        return json.dumps(rows, indent=2).encode() + b"\n"
    lines = [
        f"{row['name']:24} created {str(row['created'])[:19]}"
        + (f"  REVOKED {str(row['revoked'])[:19]}" if row["revoked"] else "")
        for row in rows
    ]
    return ("\n".join(lines) + "\n").encode() if lines else b""
