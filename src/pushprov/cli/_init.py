"""``pushprov init``: the embedded default set up in one step (``_first_run`` does the work; it
is imported only when init runs, with the service it sets up)."""

from __future__ import annotations

import argparse
import datetime as _dt
from typing import BinaryIO

from ..hosting import PASSPHRASE_ENV
from ..keys import Environment
from ._options import Subparsers

__all__ = ["DEFAULT_CLIENT", "register"]

DEFAULT_CLIENT = "backend"


def register(commands: Subparsers) -> None:
    init = commands.add_parser(
        "init",
        help="set up the embedded default in one step (store, issuer key, API client, TLS)",
        description="Make the data directory, a store passphrase file (0600, beside the store; "
        "only when no passphrase is given), the key store, an active issuer signing key, an "
        "API client (its key is printed once) and the development TLS certificate, then print "
        "the next steps. What exists is kept: running it again changes nothing and exits 0.",
    )
    init.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        default=None,
        help="environment of the issuer key (default sandbox, or $PUSHPROV_ENV)",
    )
    init.add_argument(
        "--data-dir",
        dest="data_dir",
        help="data directory (default: the one `pushprov serve` uses, "
        "$XDG_DATA_HOME/pushprov or ~/.local/share/pushprov)",
    )
    init.add_argument(
        "--store-passphrase-file",
        metavar="FILE",
        help=f"use this passphrase (first line) instead of ${PASSPHRASE_ENV} or a new file",
    )
    init.add_argument("--uid", help="user ID of the issuer key (default: 'pushprov issuer ENV')")
    init.add_argument("--bits", type=int, default=None, help="RSA size (default 3072)")
    init.add_argument(
        "--client", default=DEFAULT_CLIENT, help=f"API client name (default {DEFAULT_CLIENT})"
    )
    init.add_argument("--json", action="store_true", help="machine-readable output")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace, at: _dt.datetime, _: BinaryIO) -> bytes:
    from ._first_run import run_init

    return run_init(args, at)
