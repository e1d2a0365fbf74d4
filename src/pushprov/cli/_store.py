"""``pushprov store migrate``: create or upgrade the PostgreSQL schema (key store and service).

Run it once per deploy, before (or while) the new instances start: it is idempotent, and
concurrent runs serialize on a database lock. The embedded SQLite store needs no migration.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..store import open_backend

__all__ = ["add_store_commands", "run_store_command"]


def add_store_commands(commands: Any) -> None:
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


def run_store_command(args: argparse.Namespace) -> bytes:
    backend = open_backend(args.store)
    before, after = backend.migrate()
    if args.json:
        document = {"store": backend.name, "from": before, "to": after}
        return json.dumps(document).encode() + b"\n"
    if before == after:
        return f"{backend.name}: schema {after}, up to date\n".encode()
    return f"{backend.name}: schema {before} -> {after}\n".encode()
