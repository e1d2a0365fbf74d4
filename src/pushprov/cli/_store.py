"""``pushprov store migrate``: create or upgrade the PostgreSQL schema (key store and service).

Run it once per deploy, before (or while) the new instances start: it is idempotent, and
concurrent runs serialize on a database lock. The embedded SQLite store needs no migration.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from typing import BinaryIO

from ..store import open_backend
from ._options import Subparsers

__all__ = ["register"]


def register(commands: Subparsers) -> None:
    store = commands.add_parser(
        "store", help="the shared PostgreSQL store: create or upgrade its schema"
    ).add_subparsers(dest="store_command", required=True, metavar="SUBCOMMAND")
    run = store.add_parser(
        "migrate",
        help="create the tables, or apply the migrations this version adds (idempotent)",
        description="Needs no store passphrase: the schema holds no secret. The database "
        "password comes from PGPASSWORD or ~/.pgpass (libpq), never from argv.",
    )
    run.add_argument("--store", required=True, metavar="URL", help="postgresql://user@host/db")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace, _at: _dt.datetime, _: BinaryIO) -> bytes:
    backend = open_backend(args.store)
    before, after = backend.migrate()
    if args.json:
        document = {"store": backend.name, "from": before, "to": after}
        return json.dumps(document).encode() + b"\n"
    if before == after:
        return f"{backend.name}: schema {after}, up to date\n".encode()
    return f"{backend.name}: schema {before} -> {after}\n".encode()
