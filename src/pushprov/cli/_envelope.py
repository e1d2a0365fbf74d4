"""``pushprov seal`` and ``pushprov open``: any payload, stdin to stdout; the options and steps
that ``gopc seal`` and ``gopc open`` share with them."""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
from collections.abc import Callable
from typing import Any, BinaryIO

from .. import _api
from .._encoding import Encoding
from .._errors import UsageError
from .._opened import Opened
from .._policy import GOOGLE_PROFILE
from ._io import json_output, read_stdin
from ._keyfiles import public_keys, secret_keys
from ._keystore import add_store_options, store_keys_for_open, store_keys_for_seal, uses_store
from ._options import Subparsers, add_encoding, add_passphrase, add_time, passphrase

__all__ = [
    "add_open_keys",
    "add_seal_options",
    "facts",
    "open_keys",
    "read_message",
    "register",
    "seal",
]


def register(commands: Subparsers) -> None:
    seal_parser = commands.add_parser("seal", help="sign and encrypt stdin to stdout")
    add_seal_options(seal_parser)
    seal_parser.set_defaults(handler=_seal)

    open_parser = commands.add_parser("open", help="decrypt and verify stdin to stdout")
    add_open_keys(open_parser)
    open_parser.add_argument(
        "--json", action="store_true", help="JSON with plaintext (base64) + facts"
    )
    add_passphrase(open_parser)
    add_time(open_parser)
    open_parser.set_defaults(handler=_open)


def add_seal_options(parser: argparse.ArgumentParser) -> None:
    """The keys to sign with and encrypt to, the envelope and its encoding, passphrase, time."""
    parser.add_argument(
        "--sign-with",
        metavar="SECRET_KEY_FILE",
        action="append",
        help="secret key to sign with (repeat to sign with several keys)",
    )
    parser.add_argument(
        "--encrypt-to",
        metavar="CERT_FILE",
        action="append",
        help="certificate to encrypt to (repeat for several recipients)",
    )
    add_store_options(parser)
    _add_format(parser)
    jwe = parser.add_argument_group("JWE sealing (with --format jwe)")
    jwe.add_argument(
        "--alg",
        help='key management: RSA-OAEP-256 (default) or RSA1_5 (recipient JWK "alg": "RSA1_5")',
    )
    jwe.add_argument("--enc", help="content encryption: A256GCM (default) or A128CBC-HS256")
    jwe.add_argument("--jws-alg", help="inner signature: RS256 (default), PS256, RS384, RS512")
    jwe.add_argument("--zip", action="store_true", help='compress the payload (zip: "DEF")')
    add_encoding(parser)
    add_passphrase(parser)
    add_time(parser)


def add_open_keys(parser: argparse.ArgumentParser) -> None:
    """The keys to decrypt and verify with, the envelope, and the JWE opt-in for no signature."""
    parser.add_argument(
        "--decrypt-with",
        metavar="SECRET_KEY_FILE",
        action="append",
        help="secret key that may decrypt (repeat: any of several)",
    )
    parser.add_argument(
        "--verify-with",
        metavar="CERT_FILE",
        action="append",
        help="trusted signer certificate (repeat: one valid signature by any of them suffices)",
    )
    add_store_options(parser)
    _add_format(parser)
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="(jwe only) accept a JWE whose plaintext is the bare payload, as Google's older "
        "variant allows; never the default. --verify-with becomes optional: a nested JWS "
        "is still verified, and refused when no key verifies it",
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=["pgp", "jwe"],
        default="pgp",
        help="envelope: OpenPGP (default) or JWE with a nested JWS; never guessed from input. "
        "With jwe, key files are JWK, JWK Set or PEM",
    )


# ---------------------------------------------------------------------------------------------
# seal


def _seal(args: argparse.Namespace, at: _dt.datetime, stdin: BinaryIO) -> bytes:
    return seal(args, at, lambda: read_stdin(stdin, GOOGLE_PROFILE.max_plaintext_bytes))


def seal(args: argparse.Namespace, at: _dt.datetime, read_plaintext: Callable[[], bytes]) -> bytes:
    """Seal what ``read_plaintext`` gives, read only once the keys and options are in order."""
    fmt: _api.Format = args.format
    sign_with, encrypt_to = _seal_keys(args, at, fmt)
    encoding = Encoding(args.encoding) if args.encoding else None
    jwe = _jwe_options(args)
    sealed = _api.seal_message(
        read_plaintext(),
        sign_with=sign_with,
        encrypt_to=encrypt_to,
        format=fmt,
        encoding=encoding,
        jwe=jwe,
        at=at,
        policy=GOOGLE_PROFILE,
    )
    # Text goes out as one line; binary and armor (which ends its own lines) as they are.
    return sealed if encoding is Encoding.BINARY or sealed.endswith(b"\n") else sealed + b"\n"


def _seal_keys(
    args: argparse.Namespace, at: _dt.datetime, fmt: _api.Format
) -> tuple[list[_api.SigningKey], list[_api.RecipientKey]]:
    key_passphrase = passphrase(args)
    if uses_store(args, "sign_with", "encrypt_to"):
        return store_keys_for_seal(args, at, GOOGLE_PROFILE, fmt)
    sign_with = secret_keys(args.sign_with, key_passphrase, GOOGLE_PROFILE, fmt)
    return sign_with, public_keys(args.encrypt_to, GOOGLE_PROFILE, fmt)


def _jwe_options(args: argparse.Namespace) -> _api.JweOptions | None:
    chosen = (args.alg, args.enc, args.jws_alg)
    if args.format != "jwe":
        if any(chosen) or args.zip:
            raise UsageError("--alg, --enc, --jws-alg and --zip go with --format jwe")
        return None
    return _api.JweOptions(alg=args.alg, enc=args.enc, jws_alg=args.jws_alg, compress=args.zip)


# ---------------------------------------------------------------------------------------------
# open


def _open(args: argparse.Namespace, at: _dt.datetime, stdin: BinaryIO) -> bytes:
    decrypt_with, verify_with = open_keys(args)
    opened = _api.open_message(
        read_message(stdin),
        decrypt_with=decrypt_with,
        verify_with=verify_with,
        format=args.format,
        allow_unsigned=args.allow_unsigned,
        at=at,
        policy=GOOGLE_PROFILE,
    )
    if args.json:
        document = facts(opened)
        document["plaintext_base64"] = base64.b64encode(opened.plaintext).decode()
        return json_output(document)
    return opened.plaintext


def open_keys(
    args: argparse.Namespace,
) -> tuple[list[_api.SigningKey], list[_api.RecipientKey]]:
    """The keys to decrypt with and to verify with: from key files or from ``--store``."""
    fmt: _api.Format = args.format
    key_passphrase = passphrase(args)
    # A JWE opt-in needs no signer to trust; a nested JWS is still verified (with none: refused).
    unsigned_jwe = args.allow_unsigned and fmt == "jwe"
    needed = ("decrypt_with",) if unsigned_jwe else ("decrypt_with", "verify_with")
    if uses_store(args, *needed):
        return store_keys_for_open(args, GOOGLE_PROFILE, fmt)
    decrypt_with = secret_keys(args.decrypt_with, key_passphrase, GOOGLE_PROFILE, fmt)
    return decrypt_with, public_keys(args.verify_with or [], GOOGLE_PROFILE, fmt)


def read_message(stdin: BinaryIO) -> bytes:
    """A sealed message of either envelope, refused past the larger of their caps."""
    policy = GOOGLE_PROFILE
    return read_stdin(stdin, max(policy.max_message_bytes, policy.max_jose_token_bytes))


def facts(opened: Opened) -> dict[str, Any]:
    """What ``--json`` tells about an opened envelope besides its content."""
    return {
        "format": opened.format,
        "cipher": opened.cipher,
        "decryption_key": opened.decryption_key,
        "signatures": [
            {
                "certificate": sig.certificate,
                "signing_key": sig.signing_key,
                "hash": sig.hash_algorithm,
                "created": sig.created.isoformat() if sig.created else None,
            }
            for sig in opened.signatures
        ],
    }
