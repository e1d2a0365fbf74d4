"""The key store on the command line: ``--store``, ``--env`` and the store passphrase, for the
``keys`` commands and, in place of key files, for seal and open.

Secrets never travel on argv: the store passphrase comes from ``--store-passphrase-file``,
``$PUSHPROV_STORE_PASSPHRASE`` or the file ``pushprov init`` makes beside the store.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import os

from .. import _api
from .._errors import KeyUnusableError, UsageError
from .._policy import Policy
from ..hosting import PASSPHRASE_ENV, read_passphrase
from ..keys import DEFAULT_DRAIN_WINDOW, Environment, Keystore, key_id_of
from ..store import Backend, default_store_path, open_backend

__all__ = [
    "PASSPHRASE_ENV",
    "add_store_location",
    "add_store_options",
    "login_name",
    "open_keystore",
    "store_keys_for_open",
    "store_keys_for_seal",
    "uses_store",
]


def add_store_location(parser: argparse.ArgumentParser, *, required_env: bool) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH|URL",
        help="key store: a file (default for `keys`: $XDG_DATA_HOME/pushprov/keystore.db) or "
        "a postgresql:// URL (password via PGPASSWORD or ~/.pgpass, not on the command line)",
    )
    parser.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        required=required_env,
        help="environment every operation is scoped to (keys never cross environments)",
    )
    parser.add_argument(
        "--store-passphrase-file",
        metavar="FILE",
        help=f"file whose first line unlocks the store (else ${PASSPHRASE_ENV})",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store PATH --env ENV`` for seal/open, in place of key files."""
    add_store_location(parser, required_env=False)


# ---------------------------------------------------------------------------------------------
# seal and open with --store


def uses_store(args: argparse.Namespace, *file_options: str) -> bool:
    """True for ``--store``; a usage error for both or neither of store and key files."""
    files = [getattr(args, name) for name in file_options]
    if args.store is not None:
        if any(files):
            raise UsageError("give either --store or key files, not both")
        if args.env is None:
            raise UsageError("--store needs --env sandbox|production")
        return True
    if not all(files):
        names = " and ".join("--" + name.replace("_", "-") for name in file_options)
        raise UsageError(f"{names} are required (or --store)")
    return False


def store_keys_for_seal(
    args: argparse.Namespace, at: _dt.datetime, policy: Policy, fmt: str
) -> tuple[list[_api.SigningKey], list[_api.RecipientKey]]:
    """OpenPGP: every active signing key of ours and every active partner key; JWE: the one
    active JWK of each. None expired."""
    env = Environment(args.env)
    ks = open_keystore(args, create=False, policy=policy)
    try:
        ring = ks.snapshot(env)
        sign_with: list[_api.SigningKey]
        encrypt_to: list[_api.RecipientKey]
        if fmt == "jwe":
            signing_key, recipient = ring.jwe_signing_key(at=at), ring.jwe_recipient(at=at)
            sign_with = [] if signing_key is None else [signing_key]
            encrypt_to = [] if recipient is None else [recipient]
        else:
            sign_with, encrypt_to = list(ring.signing_keys(at=at)), list(ring.recipients(at=at))
        if not sign_with or not encrypt_to:
            raise KeyUnusableError(
                f"the {env.value} keyring has no usable active {fmt} "
                + ("signing key of ours" if not sign_with else "partner key to encrypt to")
            )
        ks.record_use(env, [key_id_of(k) for k in (*sign_with, *encrypt_to)], at=at)
    finally:
        ks.close()
    return sign_with, encrypt_to


def store_keys_for_open(
    args: argparse.Namespace, policy: Policy, fmt: str
) -> tuple[list[_api.SigningKey], list[_api.RecipientKey]]:
    """Every active or retiring key of ours, every active or retiring partner key, of the
    envelope's format."""
    env = Environment(args.env)
    ks = open_keystore(args, create=False, policy=policy)
    try:
        ring = ks.snapshot(env)
        decrypt_with: list[_api.SigningKey]
        verify_with: list[_api.RecipientKey]
        if fmt == "jwe":
            decrypt_with = list(ring.jwe_decryption_keys())
            verify_with = list(ring.jwe_verification_keys())
        else:
            decrypt_with = list(ring.decryption_keys())
            verify_with = list(ring.verification_certs())
    finally:
        ks.close()
    if not decrypt_with or not verify_with:
        raise KeyUnusableError(f"the {env.value} keyring has no active or retiring keys to open")
    return decrypt_with, verify_with


# ---------------------------------------------------------------------------------------------
# opening the store


def open_keystore(
    args: argparse.Namespace, *, create: bool, policy: Policy | None = None
) -> Keystore:
    backend = open_backend(args.store or default_store_path())
    store = backend.open_store(passphrase=_store_passphrase(args, backend), create=create)
    actor = getattr(args, "actor", None) or login_name()
    drain = getattr(args, "drain_window", DEFAULT_DRAIN_WINDOW)
    if policy is None:
        return Keystore(store, actor=actor, drain_window=drain)
    return Keystore(store, actor=actor, policy=policy, drain_window=drain)


def login_name() -> str:
    """Who acts, for the audit log, when ``--actor`` does not say."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _store_passphrase(args: argparse.Namespace, backend: Backend) -> bytes:
    return read_passphrase(
        args.store_passphrase_file, backend, file_option="--store-passphrase-file"
    )
