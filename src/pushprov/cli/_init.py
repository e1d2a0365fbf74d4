"""``pushprov init``: the embedded default set up in one step, and the next steps spelled out.

It makes what is missing and keeps what is there, so a second run destroys nothing and exits 0:
the data directory (0700), a store passphrase file beside the store (0600, only when no
passphrase is given and no store exists yet: a new passphrase never meets an old store), the
key store, an issuer signing key (generated to Google's rules, promoted after its self-test),
an API client (its key printed once, at creation) and the development TLS certificate that
`pushprov serve` uses when none is configured. `serve` and `keys` find the passphrase file
beside the store without being told.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import secrets
import shlex
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ..hosting import (
    PASSPHRASE_ENV,
    ServiceConfig,
    dev_certificate,
    keys_options,
    read_passphrase,
)
from ..keys import Environment, Format, Keystore, key_id_of
from ..store import passphrase_file_beside, read_passphrase_beside
from ._demo import random_test_pan
from ._io import json_output
from ._keys import _login_name

__all__ = ["add_init_command", "run_init"]

_DEFAULT_CLIENT = "backend"


def add_init_command(commands: Any) -> None:
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
        "--client", default=_DEFAULT_CLIENT, help=f"API client name (default {_DEFAULT_CLIENT})"
    )
    init.add_argument("--json", action="store_true", help="machine-readable output")


@dataclasses.dataclass
class _Report:
    created: list[str] = dataclasses.field(default_factory=list)
    kept: list[str] = dataclasses.field(default_factory=list)

    def note(self, what: str, created: bool) -> None:
        (self.created if created else self.kept).append(what)


def run_init(args: argparse.Namespace, at: _dt.datetime) -> bytes:
    config = _config(args)
    env = Environment(config.env)
    backend = config.backend()
    location = backend.path
    if location is None:
        raise UsageError(
            "init sets up the embedded store; a PostgreSQL store is created with "
            "'pushprov store migrate' and filled with 'pushprov keys'"
        )
    report = _Report()

    report.note("data_dir", not config.data_dir.exists())
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    passphrase, passphrase_file = _passphrase(config, location, report)

    report.note("store", not location.exists())
    keystore = Keystore(backend.open_store(passphrase=passphrase, create=True), actor=_login_name())
    try:
        ring = keystore.snapshot(env)
        active = ring.signing_keys(at=at)
        if active:
            issuer_key = key_id_of(active[0])
        else:
            uid = args.uid or f"pushprov issuer {env.value} <issuer@localhost>"
            record = keystore.generate(
                env, user_id=uid, at=at, bits=args.bits, key_format=Format.PGP,
                reason="pushprov init",
            )  # fmt: skip
            issuer_key = keystore.promote(
                env, record.key_id, at=at, reason="pushprov init: the first issuer key"
            ).key_id
        report.note("issuer_key", not active)
        google = keystore.snapshot(env).recipients(at=at)
    finally:
        keystore.close()

    api_key = _client(config, args.client, at, report)
    cert, _, created = dev_certificate(config.data_dir, now=at)
    report.note("tls_certificate", created)

    steps = _next_steps(config, args, issuer_key, api_key, cert, passphrase_file, at)
    if google:
        del steps["import_google_key"]  # done before: an active Google key is there
    document: dict[str, Any] = {
        "env": env.value,
        "data_dir": str(config.data_dir),
        "store": str(location),
        "passphrase_file": None if passphrase_file is None else str(passphrase_file),
        "issuer_key": issuer_key,
        "google_key": key_id_of(google[0]) if google else None,
        "client": args.client,
        "api_key": api_key,
        "tls_certificate": str(cert),
        "created": report.created,
        "kept": report.kept,
        "next_steps": steps,
    }
    if args.json:
        return json_output(document)
    return _render(document).encode()


def _config(args: argparse.Namespace) -> ServiceConfig:
    """What `pushprov serve` would use (its defaults, $PUSHPROV_*), with init's options."""
    config = ServiceConfig.load(None)
    changes: dict[str, Any] = {}
    if args.env is not None:
        changes["env"] = args.env
    if args.data_dir is not None:
        changes["data_dir"] = Path(args.data_dir).expanduser()
    if args.store_passphrase_file is not None:
        changes["store_passphrase_file"] = Path(args.store_passphrase_file)
    return dataclasses.replace(config, **changes)


def _passphrase(config: ServiceConfig, store: Path, report: _Report) -> tuple[bytes, Path | None]:
    """The passphrase serve would use; a new file beside the store when there is none and no
    store yet. Returns the file `serve` and `keys` will find by themselves, if it is one."""
    if config.store_passphrase_file is not None or PASSPHRASE_ENV in os.environ:
        # The one rule (it refuses an empty one), as serve will read it.
        return read_passphrase(config.store_passphrase_file, config.backend()), None
    path = passphrase_file_beside(store)
    found = read_passphrase_beside(store)
    if found is not None:
        report.note("passphrase_file", False)
        return found, path
    if store.exists():
        raise UsageError(
            f"the key store at {store} exists but no passphrase is given: set "
            f"${PASSPHRASE_ENV} or --store-passphrase-file (init never makes a new passphrase "
            "for an existing store)"
        )
    passphrase = secrets.token_urlsafe(32).encode()
    try:
        # 0600 from the start, never readable by others for a moment; never overwritten.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise UsageError(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(passphrase + b"\n")
    report.note("passphrase_file", True)
    return passphrase, path


def _client(config: ServiceConfig, name: str, at: _dt.datetime, report: _Report) -> str | None:
    """A new client's API key; None when the client exists (its key was shown when made)."""
    state = config.backend().open_state()
    try:
        exists = any(client.name == name for client in state.list_clients())
        report.note("client", not exists)
        return None if exists else state.add_client(name, at=at)
    finally:
        state.close()


def _next_steps(
    config: ServiceConfig,
    args: argparse.Namespace,
    issuer_key: str,
    api_key: str | None,
    cert: Path,
    passphrase_file: Path | None,
    at: _dt.datetime,
) -> dict[str, Any]:
    keys = keys_options(config)
    serve = ["pushprov", "serve"]
    if config.env != "sandbox":
        serve += ["--env", config.env]
    if args.data_dir is not None:
        serve += ["--data-dir", shlex.quote(str(config.data_dir))]
    prefix = ""
    if config.store_passphrase_file is not None and passphrase_file is None:
        given = shlex.quote(str(config.store_passphrase_file))
        keys += f" --store-passphrase-file {given}"
        prefix = f"PUSHPROV_STORE_PASSPHRASE_FILE={given} "
    host = "127.0.0.1" if config.host in ("0.0.0.0", "") else config.host  # noqa: S104
    host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    card = {
        "accountNumber": random_test_pan().reveal(),  # a test number, no real card
        "expiryMonth": "12",
        "expiryYear": f"{(at.year + 3) % 100:02d}",
    }
    # The request id and timestamp are made by the shell at run time: the service refuses a
    # timestamp more than 60 s away, and a reused id with another body.
    body = (
        '{"requestHeader":{"requestId":"first-gopc-\'"$(date +%s)"\'",'
        '"requestTimestamp":"\'"$(date +%s)000"\'"},'
        '"serverSessionId":"first-run-session",'
        f'"card":{{"accountNumber":"{card["accountNumber"]}",'
        f'"expiryMonth":"{card["expiryMonth"]}","expiryYear":"{card["expiryYear"]}"}}}}'
    )
    bearer = api_key if api_key is not None else "$PUSHPROV_API_KEY"
    curl = (
        f"curl --cacert {shlex.quote(str(cert))} "
        f'-H "Authorization: Bearer {bearer}" -H "Content-Type: application/json" '
        f"--data '{body}' https://{host}:{config.port}/v1/gopc"
    )
    return {
        "import_google_key": [
            f"pushprov keys import GOOGLE_KEY.asc {keys}",
            f"pushprov keys promote KEY_ID {keys}",
        ],
        "export_issuer_key": f"pushprov keys export {issuer_key} {keys} > issuer.pub.asc",
        "serve": prefix + " ".join(serve),
        "curl": curl,
    }


def _render(document: dict[str, Any]) -> str:
    data_dir = document["data_dir"]
    labels = {
        "data_dir": ("data directory", data_dir),
        "passphrase_file": (
            "store passphrase",
            f"{document['passphrase_file']} (0600; serve and keys read it from there)",
        ),
        "store": ("key store", document["store"]),
        "issuer_key": ("issuer key", f"{document['issuer_key']} (active, self-test passed)"),
        "client": ("API client", document["client"]),
        "tls_certificate": (
            "TLS certificate",
            f"{document['tls_certificate']} (self-signed, for localhost and 127.0.0.1)",
        ),
    }
    lines = [f"pushprov init: {document['env']}"]
    for name, (label, value) in labels.items():
        if name in document["created"]:
            lines.append(f"  created  {label:<17} {value}")
        elif name in document["kept"]:
            lines.append(f"  kept     {label:<17} {value}")
    if document["passphrase_file"] is None:
        lines.append(f"  (store passphrase: the one given, from ${PASSPHRASE_ENV} or a file)")
    lines.append("")
    if document["api_key"] is not None:
        lines += [
            f"API key of client {document['client']} (shown only now; the service keeps a hash):",
            f"  {document['api_key']}",
        ]
    else:
        lines += [
            f"Client {document['client']} exists: its API key was shown when it was made. "
            "'pushprov clients add NAME' makes another;",
            "the curl line below reads it from $PUSHPROV_API_KEY.",
        ]
    steps = document["next_steps"]
    lines += ["", "Next steps:"]
    number = 1
    if "import_google_key" in steps:
        lines += [
            f"  {number}. Import Google's encryption key for {document['env']} (a certificate "
            "Google gives you) and activate it;",
            "     import prints its KEY_ID. Until then /readyz answers 503 and no GOPC is sealed.",
            *(f"       {command}" for command in steps["import_google_key"]),
        ]
        number += 1
    lines += [
        f"  {number}. Give Google your issuer key's certificate:",
        f"       {steps['export_issuer_key']}",
        f"  {number + 1}. Start the service (HTTPS with the development certificate):",
        f"       {steps['serve']}",
        f"  {number + 2}. Seal a first GOPC (--cacert trusts the development certificate; the "
        "card is a test number):",
        f"       {steps['curl']}",
    ]
    return "\n".join(lines) + "\n"
